"""Monthly quotas: platform ceilings a tenant may only lower; past one an API turn is 429, a channel
user gets the agent's fallback reply, the message is kept and the tenant hears of it once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chalicelib.domain.session import SessionKey
from chalicelib.runtime.local_worker import poll_once
from chalicelib.runtime.services import reset_services, services
from tests.api.harness import Api, error_of, paths_of
from tests.runtime.test_events import SECRET, Receiver, receiver
from tests.runtime.test_usage import SHOP

__all__ = ["receiver"]


@pytest.fixture
def ceiling(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The platform allows 3 turns a month per tenant (and private URLs, for the local receiver)."""
    monkeypatch.setenv("RUCHE_QUOTA_MONTHLY_TURNS", "3")
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")
    reset_services()
    api.services = services()
    return api


def turn(api: Api, key: str, user: str, message: str = "When does the shop open?") -> Any:
    return api.call("POST", "/v1/agents/shop/turns", key, {"user_id": user, "message": message})


def transcript(api: Api, key: str, session_id: str) -> list[tuple[str, str]]:
    response = api.call("GET", f"/v1/agents/shop/sessions/{session_id}/messages", key)
    assert response.status_code == 200, response.body
    return [(message["role"], message["text"]) for message in response.json_body["messages"]]


def drain(api: Api) -> None:
    for _ in range(30):
        if poll_once(api.services, wait_s=0) == 0:
            return


def test_past_the_quota_an_api_turn_is_429_and_a_channel_gets_the_fallback_with_every_message_kept(
        ceiling: Api, receiver: Receiver) -> None:
    api = ceiling
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/shop", key, SHOP).status_code == 200
    endpoint = {"url": receiver.url, "events": ["quota_exceeded"], "secret": SECRET}
    assert api.call("PUT", "/v1/event-endpoints/ops", key, endpoint).status_code == 200
    # GIVEN three turns this month: the quota is reached, not passed
    for user in ("u1", "u2", "u3"):
        assert turn(api, key, user).status_code == 200
    first_session = turn(api, key, "u1")  # WHEN the fourth turn comes in
    # THEN the API answers 429 with the reset time, and the message stays in the session
    assert first_session.status_code == 429
    error = error_of(first_session)
    assert error["code"] == "quota_exceeded"
    today = dt.datetime.now(dt.UTC)
    next_month = dt.datetime(today.year + today.month // 12, today.month % 12 + 1, 1, tzinfo=dt.UTC)
    assert error["details"]["reset_at"] == next_month.isoformat().replace("+00:00", "Z")
    assert error["details"]["limit"] == "monthly_turns" and error["details"]["quota"] == 3
    assert int(first_session.headers["Retry-After"]) > 0
    sessions = api.call("GET", "/v1/usage?from={0}&to={0}".format(today.date().isoformat()), key)
    assert sessions.json_body["totals"]["turns"] == 4  # the refused turn is a turn record too
    # the refused message is in u1's session, after the first turn's reply
    start = api.services.turn_reads.start(SessionKey(tenant_id=tenant_id, agent_id="shop", channel="api",
                                                     user_id="u1"))
    assert start.session_id is not None
    assert [role for role, _ in transcript(api, key, start.session_id)] == ["user", "agent", "user"]
    records = api.services.sessions.turns(tenant_id, start.session_id).items
    assert [(record.kind, record.llm_calls) for record in records] == [("answered", 1), ("refused", 0)]
    # AND a webchat visitor gets the agent's fallback reply, the message kept
    binding = api.call("POST", "/v1/agents/shop/channels", key,
                       {"channel": "webchat", "secrets": {"token": "wc-public-token"}})
    assert binding.status_code == 201, binding.body
    posted = api.call("POST", f"/v1/webhooks/webchat/{binding.json_body['binding_id']}",
                      body={"message": "my order 123 is late"}, headers={"Authorization": "Bearer wc-public-token"})
    assert posted.status_code == 202, posted.body
    drain(api)
    assert transcript(api, key, posted.json_body["session_id"]) == [
        ("user", "my order 123 is late"), ("agent", "A colleague will get back to you.")]
    # AND the tenant's endpoint heard of it once, for two refused turns
    drain(api)
    events = [body for body in receiver.bodies() if body["type"] == "quota_exceeded"]
    assert len(events) == 1
    assert events[0]["data"] == {"limit": "monthly_turns", "quota": 3, "used": 3,
                                 "reset_at": error["details"]["reset_at"]}


def test_a_tenant_may_lower_a_quota_but_never_raise_it(ceiling: Api) -> None:
    api = ceiling
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/shop", key, SHOP).status_code == 200
    raised = api.call("PUT", "/v1/config", key, {"quota": {"monthly_turns": 10}})
    assert raised.status_code == 422
    assert paths_of(raised) == ["quota.monthly_turns"]
    assert api.call("GET", "/v1/config", key).json_body == {}
    by_agent = api.call("PUT", "/v1/agents/shop", key, {**SHOP, "agent": {"name": "Shop", "config": {
        "quota": {"monthly_turns": 10}}}})
    assert by_agent.status_code == 422
    assert api.call("PUT", "/v1/config", key, {"quota": {"monthly_turns": 2}}).status_code == 200
    assert [turn(api, key, user).status_code for user in ("a", "b", "c")] == [200, 200, 429]


def test_a_token_quota_refuses_the_turn_after_the_one_that_used_it_up(api: Api) -> None:
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/shop", key, SHOP).status_code == 200
    assert api.call("PUT", "/v1/config", key, {"quota": {"monthly_tokens": 50}}).status_code == 200
    statuses = [turn(api, key, f"user{index}").status_code for index in range(6)]
    assert statuses[0] == 200 and statuses[-1] == 429  # a turn costs well over 10 tokens
    refused = turn(api, key, "late")
    assert error_of(refused)["details"]["limit"] == "monthly_tokens"

