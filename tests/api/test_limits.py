"""Limits: the per-tenant rate limit (429 + Retry-After), ?limit=/cursor on every list, unknown routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.runtime.events import ENDPOINTS
from chalicelib.runtime.limits import RATE_GATE
from tests.api.harness import ADMIN_KEY, Api, a_bundle, error_of


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(RATE_GATE, "clock", fake)
    yield fake


def test_a_burst_over_the_tenant_limit_is_429_with_retry_after_then_recovers(api: Api, clock: Clock) -> None:
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/config", key, {"rate_limit": {"requests_per_minute": 3}}).status_code == 200  # 1
    answers = [api.call("GET", "/v1/agents", key) for _ in range(3)]  # requests 2..4
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    refused = answers[-1]
    assert error_of(refused)["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    clock.now += int(refused.headers["Retry-After"])  # the next window
    assert api.call("GET", "/v1/agents", key).status_code == 200


def test_the_limit_is_per_tenant_and_never_counts_the_admin_key(api: Api, clock: Clock) -> None:
    _, key = api.new_tenant()
    _, other = api.new_tenant("other")
    api.call("PUT", "/v1/config", key, {"rate_limit": {"requests_per_minute": 1}})
    assert api.call("GET", "/v1/agents", key).status_code == 429
    assert api.call("GET", "/v1/agents", other).status_code == 200
    assert api.call("POST", "/v1/tenants", ADMIN_KEY, {"name": "third"}).status_code == 201
    assert api.call("POST", "/v1/tenants", ADMIN_KEY, {"name": "fourth"}).status_code == 201


def test_the_platform_default_applies_without_a_tenant_setting(api: Api, clock: Clock) -> None:
    _, key = api.new_tenant()
    assert RATE_GATE.limit_for(api.services, "ten_unknown") == 600
    assert all(api.call("GET", "/v1/keys", key).status_code == 200 for _ in range(5))


# --- pagination on every list ---------------------------------------------------------------------

def pages(api: Api, key: str, path: str, field: str, limit: int = 1) -> list[list[Any]]:
    """Every page of a list, following next_cursor."""
    found: list[list[Any]] = []
    separator = "&" if "?" in path else "?"
    url = f"{path}{separator}limit={limit}"
    for _ in range(20):
        body = api.call("GET", url, key).json_body
        found.append(body[field])
        if body["next_cursor"] is None:
            return found
        url = f"{path}{separator}limit={limit}&cursor={body['next_cursor']}"
    raise AssertionError("the cursor never ran out")


def test_every_list_pages_with_limit_and_cursor(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ENDPOINTS, "clock", lambda: 0.0)
    _, key = api.new_tenant()
    for agent in ("a1", "a2"):
        assert api.call("PUT", f"/v1/agents/{agent}", key, a_bundle()).status_code == 200
    api.call("PUT", "/v1/agents/a1", key, a_bundle())  # a second version
    api.call("POST", "/v1/keys", key)
    for channel in ("webchat", "webchat"):
        created = api.call("POST", "/v1/agents/a1/channels", key, {"channel": channel, "secrets": {"token": "t" * 24}})
        assert created.status_code == 201, created.body
    for endpoint in ("e1", "e2"):
        put = api.call("PUT", f"/v1/event-endpoints/{endpoint}", key,
                       {"url": "https://example.com/hooks", "events": ["handoff"], "secret": "s" * 20})
        assert put.status_code == 200, put.body
    first = api.call("POST", "/v1/agents/a1/turns", key, {"user_id": "u1", "message": "hello"}).json_body
    session, interlocutor = first["session_id"], first["interlocutor_id"]
    api.call("POST", "/v1/agents/a1/turns", key, {"user_id": "u1", "message": "again", "session_id": session})
    api.call("PATCH", f"/v1/agents/a1/interlocutors/{interlocutor}", key, {"fields": {"order_id": "A1"}})
    api.call("PATCH", f"/v1/agents/a1/interlocutors/{interlocutor}", key, {"fields": {"order_id": "A2"}})

    lists = {
        "/v1/agents": "agents",
        "/v1/agents/a1/versions": "versions",
        "/v1/keys": "keys",
        "/v1/agents/a1/channels": "channels",
        "/v1/event-endpoints": "event_endpoints",
        f"/v1/agents/a1/sessions/{session}/turns": "turns",
        f"/v1/agents/a1/sessions/{session}/messages": "messages",
        f"/v1/agents/a1/interlocutors/{interlocutor}?history=true": "history",
    }
    for path, field in lists.items():
        found = pages(api, key, path, field)
        assert len(found) >= 2 and all(len(page) == 1 for page in found), path
        whole = api.call("GET", path, key).json_body
        assert [item for page in found for item in page] == whole[field], path
        bad = api.call("GET", f"{path}{'&' if '?' in path else '?'}limit=0", key)
        assert bad.status_code == 422, path


# --- what Chalice answers itself ------------------------------------------------------------------

def test_a_wrong_method_and_media_type_are_enveloped(api: Api) -> None:
    _, key = api.new_tenant()
    wrong_method = api.call("PATCH", "/v1/keys", key)
    assert (wrong_method.status_code, error_of(wrong_method)["code"]) == (405, "method_not_allowed")
    wrong_type = api.call("PUT", "/v1/config", key, raw="x", content_type="text/csv")
    assert (wrong_type.status_code, error_of(wrong_type)["code"]) == (415, "unsupported_media_type")


def test_an_unknown_route_is_the_404_envelope(api: Api) -> None:
    # Chalice's local gateway answered 403 "Missing Authentication Token" (echoing an Authorization
    # header); api/local_gateway.py answers our envelope, as the deployed Gateway Response does.
    response = api.call("GET", "/v1/nowhere/at/all")
    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")
