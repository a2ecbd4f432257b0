"""runtime/agents.py: publish guards, If-Match parsing, rollback, item edits, network checks."""

from __future__ import annotations

import pytest

from chalicelib.domain.bundle import parse_bundle
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound
from chalicelib.runtime import agents
from chalicelib.runtime.agents import AgentRef, ItemRef
from chalicelib.runtime.services import Services, reset_services, services
from tests.api.harness import a_bundle
from tests.conftest import Aws


@pytest.fixture
def svc(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Services:
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RUCHE_ALLOW_PRIVATE_NETWORK", raising=False)
    reset_services()
    return services()


@pytest.mark.parametrize(
    ("header", "expected"), [(None, None), ("*", None), ("", None), ("3", 3), ('"3"', 3), ('W/"12"', 12)]
)
def test_if_match_accepts_plain_quoted_and_weak_versions(header: str | None, expected: int | None) -> None:
    assert agents.parse_if_match(header) == expected


def test_a_non_numeric_if_match_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        agents.parse_if_match('"abc"')


def test_every_private_url_of_a_bundle_is_reported_together() -> None:
    document = a_bundle()
    document["tools"][0]["url"] = "http://10.1.2.3/x"
    document["agent"]["config"] = {"llm": {"base_url": "http://localhost:8080"}}
    document["channels"] = {"slack": {"config": {"llm": {"base_url": "http://192.168.1.1"}}}}
    document["scenarios"][0]["config"] = {"llm": {"base_url": "ftp://example.com"}}
    with pytest.raises(InvalidInput) as caught:
        agents.check_network(parse_bundle(document), allow_private=False)
    assert sorted(error["path"] for error in caught.value.details["errors"]) == [
        "agent.config.llm.base_url",
        "channels.slack.config.llm.base_url",
        "scenarios[0].config.llm.base_url",
        "tools[0].url",
    ]
    with pytest.raises(InvalidInput):  # the scheme is checked even where private addresses are allowed
        agents.check_network(parse_bundle(document), allow_private=True)


def test_publishing_on_a_stale_base_is_a_conflict_and_changes_nothing(svc: Services) -> None:
    assert agents.publish(svc, AgentRef("t1", "a1"), a_bundle()) == 1
    assert agents.publish(svc, AgentRef("t1", "a1"), a_bundle(), if_match="1") == 2
    with pytest.raises(Conflict):
        agents.publish(svc, AgentRef("t1", "a1"), a_bundle(agent={"name": "late"}), if_match="1")
    assert agents.load(svc, "t1", "a1").bundle.agent.name == "Support"
    with pytest.raises(Conflict):  # If-Match on an agent that does not exist yet
        agents.publish(svc, AgentRef("t1", "new"), a_bundle(), if_match="1")


def test_rollback_keeps_the_old_embeddings_and_honours_if_match(svc: Services) -> None:
    agents.publish(svc, AgentRef("t1", "a1"), a_bundle())
    agents.publish(svc, AgentRef("t1", "a1"), a_bundle(rules=[]))
    with pytest.raises(Conflict):
        agents.rollback(svc, "t1", "a1", 1, if_match="1")
    assert agents.rollback(svc, "t1", "a1", 1) == 3
    latest = agents.load(svc, "t1", "a1")
    assert set(latest.vectors) == {"rule:refunds", "scenario:returns"}
    with pytest.raises(NotFound):
        agents.rollback(svc, "t1", "nobody", 1)


def test_versions_and_items_of_an_unknown_agent_are_not_found(svc: Services) -> None:
    with pytest.raises(NotFound):
        agents.versions(svc, "t1", "nobody")
    with pytest.raises(NotFound):
        agents.delete_item(svc, AgentRef("t1", "nobody"), ItemRef("rules", "x"))
    agents.publish(svc, AgentRef("t1", "a1"), a_bundle())
    with pytest.raises(NotFound):
        agents.get_item(svc, "t1", "a1", "widgets", "x")
    with pytest.raises(NotFound):
        agents.get_item(svc, "t1", "a1", "rules", "x")


def test_an_item_body_without_its_id_takes_the_paths(svc: Services) -> None:
    agents.publish(svc, AgentRef("t1", "a1"), a_bundle())
    agents.put_item(svc, AgentRef("t1", "a1"), ItemRef("tools", "status"), item={"url": "https://example.com/s"})
    assert agents.get_item(svc, "t1", "a1", "tools", "status")["id"] == "status"
    agents.put_item(svc, AgentRef("t1", "a1"), ItemRef("fields", "zip"), item={"name": "zip", "type": "string"})
    assert agents.load(svc, "t1", "a1").bundle.field("zip") is not None


def test_agents_are_listed_in_id_order(svc: Services) -> None:
    for agent_id in ("b", "a"):
        agents.publish(svc, AgentRef("t1", agent_id), a_bundle())
    assert agents.list_agents(svc, "t1") == [{"agent_id": "a", "version": 1}, {"agent_id": "b", "version": 1}]
    assert agents.list_agents(svc, "t2") == []


def test_relative_tool_urls_are_checked_against_the_agents_tools_base_url_when_it_sets_one() -> None:
    document = a_bundle()
    document["tools"][0]["url"] = "/tools/lookup"
    agents.check_network(parse_bundle(document), allow_private=False)  # checked at call time instead

    document["agent"]["config"] = {"tools": {"base_url": "http://10.0.0.5/api"}}
    with pytest.raises(InvalidInput) as caught:
        agents.check_network(parse_bundle(document), allow_private=False)
    assert sorted(error["path"] for error in caught.value.details["errors"]) == [
        "agent.config.tools.base_url", "tools[0].url"]
