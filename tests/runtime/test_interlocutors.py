"""runtime/interlocutors.py: validation of API-set values, views, erasure."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.api.views import InterlocutorView
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.runtime import agents, interlocutors
from chalicelib.runtime.agents import AgentRef
from chalicelib.runtime.interlocutors import InterlocutorRead
from chalicelib.runtime.services import Services, reset_services, services
from tests.api.harness import a_bundle
from tests.conftest import Aws


def _json(read: InterlocutorRead) -> dict[str, Any]:
    """The answer the API sends for what the gateway read (api/views.py shapes it)."""
    return InterlocutorView.of(read).model_dump(mode="json")


@pytest.fixture
def svc(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Services:
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    reset_services()
    built = services()
    document = a_bundle()
    document["fields"].append({"name": "phone", "type": "phone"})
    document["fields"].append({"name": "age", "type": "integer", "minimum": 18})
    agents.publish(built, AgentRef("t1", "a1"), document)
    return built


def test_values_are_stored_in_their_canonical_form(svc: Services) -> None:
    person = svc.interlocutors.resolve("t1", "api", "u1")
    view = _json(interlocutors.patch(
        svc, "t1", "a1", person, {"phone": "+1 (555) 010-9999", "age": "42"}
    ))
    assert view["fields"]["phone"]["value"] == "+15550109999"
    assert view["fields"]["age"]["value"] == 42


def test_an_out_of_range_value_is_rejected_without_echoing_it(svc: Services) -> None:
    person = svc.interlocutors.resolve("t1", "api", "u1")
    with pytest.raises(InvalidInput) as caught:
        interlocutors.patch(svc, "t1", "a1", person, {"age": 7})
    assert caught.value.details["errors"] == [{"path": "fields.age", "message": "is below the minimum 18"}]


def test_an_empty_patch_writes_nothing_and_returns_the_view(svc: Services) -> None:
    person = svc.interlocutors.resolve("t1", "api", "u1")
    assert _json(interlocutors.patch(svc, "t1", "a1", person, {}))["fields"] == {}
    assert svc.interlocutors.history("t1", person) == []


def test_an_unknown_interlocutor_or_agent_is_not_found(svc: Services) -> None:
    with pytest.raises(NotFound):
        interlocutors.get(svc, "t1", "a1", "int_nobody")
    with pytest.raises(NotFound):
        interlocutors.erase(svc, "t1", "a1", "int_nobody")
    person = svc.interlocutors.resolve("t1", "api", "u1")
    with pytest.raises(NotFound):
        interlocutors.get(svc, "t1", "nobody", person)
