"""Usage metering: the counters kept in the turn's own commit equal a recount from the turn records.

The app runs in-process over moto; async and channel turns go through the real queue and worker.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain.usage import COUNTERS
from chalicelib.runtime.local_worker import poll_once
from chalicelib.runtime.services import reset_services, services
from chalicelib.runtime.turns import TurnInput, run_sync
from tests.api.harness import ADMIN_KEY, Api
from tests.support.chat_server import ChatServer

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
SHOP: dict[str, Any] = {
    "agent": {"name": "Shop", "config": {"enforcement": {"max_regeneration_attempts": 2}}},
    "templates": [{"id": "safe", "mode": "fallback", "text": "A colleague will get back to you."},
                  {"id": "hours", "mode": "exclusive", "text": "We open at 9am."},
                  # A careless template: the offline draft says it, the constraint refuses it every time.
                  {"id": "voucher_text", "mode": "suggest", "text": "Your voucher code is SECRET42."}],
    "rules": [
        {"id": "opening_hours", "condition": "the user asks when the shop opens",
         "action": "give the opening hours", "templates": ["hours"]},
        {"id": "voucher", "condition": "the user asks about a voucher code",
         "action": "say that the voucher code is SECRET42", "templates": ["voucher_text"]},
        {"id": "no_codes", "condition": "always", "action": "never reveal a voucher code",
         "hard_constraint": True, "expression": 'not contains(reply, "SECRET42")'},
        {"id": "human", "condition": "the user asks to speak to a human person",
         "action": "say a colleague takes over", "handoff": True},
    ],
}
UNDERSTOOD = {"intent": "", "language": "en", "values": {}, "applicable_rules": [], "scenario_signal": "none",
              "scenario_id": None, "conditions_true": [], "confirmed": False}


@pytest.fixture
def model() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


class Tenant:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.tenant_id, self.key = api.new_tenant()

    def publish(self, agent_id: str, bundle: dict[str, Any]) -> None:
        response = self.api.call("PUT", f"/v1/agents/{agent_id}", self.key, bundle)
        assert response.status_code == 200, response.body

    def turn(self, agent_id: str, user: str, message: str, headers: dict[str, str] | None = None,
             query: str = "") -> dict[str, Any]:
        response = self.api.call("POST", f"/v1/agents/{agent_id}/turns{query}", self.key,
                                 {"user_id": user, "message": message}, headers=headers)
        assert response.status_code in (200, 202), response.body
        body: dict[str, Any] = response.json_body
        return body

    def usage(self, query: str = "") -> dict[str, Any]:
        response = self.api.call("GET", f"/v1/usage?from={TODAY}&to={TODAY}{query}", self.key)
        assert response.status_code == 200, response.body
        body: dict[str, Any] = response.json_body
        return body

    def drain(self) -> None:
        for _ in range(60):
            if poll_once(self.api.services, wait_s=0) == 0:
                return

    def records(self, session_ids: set[str]) -> list[Any]:
        found = []
        for session_id in session_ids:
            found += self.api.services.sessions.turns(self.tenant_id, session_id, limit=200).items
        return found


def recount(records: list[Any]) -> dict[str, int]:
    """The usage counters, counted by hand from the turn records."""
    counted: Counter[str] = Counter()
    for record in records:
        counted["turns"] += 1
        counted["llm_calls"] += record.llm_calls
        counted["prompt_tokens"] += record.prompt_tokens
        counted["completion_tokens"] += record.completion_tokens
        counted["tool_calls"] += sum(call.status in ("ok", "error", "timeout") for call in record.tool_calls)
        counted["regenerations"] += record.outcome.regeneration_attempts
        counted["fallbacks"] += record.outcome.fallback_used
        counted["handoffs"] += record.outcome.handoff and record.kind == "answered"
    return {name: counted[name] for name in COUNTERS}


def test_counters_equal_a_recount_of_the_turn_records_after_a_mixed_run(
        api: Api, model: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")  # the scripted model listens on 127.0.0.1
    reset_services()
    api.services = services()
    shop = Tenant(api)
    shop.publish("shop", SHOP)
    assert api.call("PUT", "/v1/secrets/k", shop.key, {"value": "sk"}).status_code == 204
    slow = {"agent": {"name": "Slow", "config": {"llm": {"provider": "openai", "base_url": model.base_url,
                                                         "api_key_secret": "k", "max_retries": 0,
                                                         "timeout_s": 5}}},
            "rules": [{"id": "greet", "condition": "the user says hello", "action": "greet"}]}
    shop.publish("slow", slow)
    sessions: set[str] = set()
    # sync turns: an exclusive template, regenerations ending in the fallback, a handoff, nothing matched
    sessions.add(shop.turn("shop", "u1", "When does the shop open?")["session_id"])
    voucher = shop.turn("shop", "u2", "What is the voucher code?")
    assert voucher["outcome"]["regeneration_attempts"] == 2 and voucher["outcome"]["fallback_used"]
    sessions.add(voucher["session_id"])
    handed = shop.turn("shop", "u3", "I want to speak to a human person")
    assert handed["outcome"]["handoff"]
    sessions.add(handed["session_id"])
    sessions.add(shop.turn("shop", "u3", "hello?")["session_id"])  # silent: the human has it
    sessions.add(shop.turn("shop", "u4", "Tell me about giraffes")["session_id"])
    # a retried Idempotency-Key: one turn
    first = shop.turn("shop", "u5", "When does the shop open?", headers={"Idempotency-Key": "k-1"})
    again = shop.turn("shop", "u5", "When does the shop open?", headers={"Idempotency-Key": "k-1"})
    assert again["turn_id"] == first["turn_id"]
    sessions.add(first["session_id"])
    # an async API turn and a webchat webhook, answered by the worker
    sessions.add(shop.turn("shop", "u6", "What is the voucher code?", query="?async=true")["session_id"])
    binding = api.call("POST", "/v1/agents/shop/channels", shop.key,
                       {"channel": "webchat", "secrets": {"token": "wc-public-token"}})
    assert binding.status_code == 201, binding.body
    posted = api.call("POST", f"/v1/webhooks/webchat/{binding.json_body['binding_id']}",
                      body={"message": "When does the shop open?"},
                      headers={"Authorization": "Bearer wc-public-token"})
    assert posted.status_code == 202, posted.body
    sessions.add(posted.json_body["session_id"])
    shop.drain()
    # a superseded message: a second message arrives while the first turn waits for the model
    model.reply_json(UNDERSTOOD, prompt_tokens=70, completion_tokens=9)
    model.stall(2.5, "First answer.")  # long enough for the second message, even on a loaded machine
    model.reply_json(UNDERSTOOD, prompt_tokens=80, completion_tokens=11)
    model.reply("Answer to both.", prompt_tokens=120, completion_tokens=5)
    slow_session = shop.turn("slow", "u7", "hello", query="?async=true")["session_id"]
    later = threading.Timer(0.4, lambda: shop.turn("slow", "u7", "are you there", query="?async=true"))
    later.start()
    shop.drain()
    later.join()
    shop.drain()
    sessions.add(slow_session)
    records = shop.records(sessions)
    slow_records = [record for record in records if record.agent_id == "slow"]
    assert [record.reply for record in slow_records] == ["Answer to both."]  # the first reply was dropped
    assert (slow_records[0].prompt_tokens, slow_records[0].completion_tokens) == (200, 16)
    assert len(records) == 9
    # THEN the usage answer equals the recount, per agent and in total
    usage = shop.usage()
    assert usage["totals"] == recount(records)
    by_agent = {row["agent_id"]: row for row in usage["days"]}
    assert set(by_agent) == {"shop", "slow"}
    for agent_id, row in by_agent.items():
        assert row["date"] == TODAY
        assert {name: row[name] for name in COUNTERS} == recount([r for r in records if r.agent_id == agent_id])
    assert usage["totals"]["regenerations"] == 4 and usage["totals"]["fallbacks"] == 2
    assert usage["totals"]["handoffs"] == 1
    only_slow = shop.usage("&agent_id=slow")
    assert [row["agent_id"] for row in only_slow["days"]] == ["slow"]
    assert only_slow["totals"]["turns"] == 1 and only_slow["totals"]["prompt_tokens"] == 200
    # the platform admin sees the same answer; another tenant sees none of it
    admin = api.call("GET", f"/v1/tenants/{shop.tenant_id}/usage?from={TODAY}&to={TODAY}", ADMIN_KEY)
    assert admin.status_code == 200 and admin.json_body == usage
    assert Tenant(api).usage()["totals"] == dict.fromkeys(COUNTERS, 0)


@pytest.fixture
def serial_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each request atomically; in-process moto does not when called from threads
    (a transaction deep-copies tables another thread is writing), so requests take turns here."""
    from moto.dynamodb.responses import DynamoHandler

    lock, call_action = threading.Lock(), DynamoHandler.call_action

    def one_at_a_time(self: DynamoHandler) -> Any:
        with lock:
            return call_action(self)

    monkeypatch.setattr(DynamoHandler, "call_action", one_at_a_time)


def test_concurrent_turns_of_one_tenant_never_lose_an_increment(api: Api, serial_moto: None) -> None:
    shop = Tenant(api)
    shop.publish("shop", SHOP)
    svc, done, errors = api.services, [], []

    def talk(user: str) -> None:
        try:
            for _ in range(3):
                reply = run_sync(svc, shop.tenant_id, "shop",
                                 TurnInput(user_id=user, message="When does the shop open?"))
                done.append(reply.session_id)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(f"user-{index}",)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    usage = shop.usage()
    assert usage["totals"]["turns"] == 24 == len(shop.records(set(done)))
    assert usage["totals"]["llm_calls"] == recount(shop.records(set(done)))["llm_calls"]


@pytest.mark.parametrize(("query", "path"), [
    ("from=2026-03-10&to=2026-03-01", "to"),
    ("from=2026-01-01&to=2026-06-30", "to"),
    ("from=2026-02-30&to=2026-03-01", "from"),
    ("to=2026-03-01", "from"),
])
def test_a_reversed_too_long_or_malformed_range_is_422_in_the_envelope(api: Api, query: str, path: str) -> None:
    _, key = api.new_tenant()
    response = api.call("GET", f"/v1/usage?{query}", key)
    assert response.status_code == 422
    assert response.json_body["error"]["code"] == "invalid_input"
    assert path in [error["path"] for error in response.json_body["error"]["details"]["errors"]]


def test_a_range_of_92_days_is_accepted_and_empty_days_are_not_listed(api: Api) -> None:
    _, key = api.new_tenant()
    response = api.call("GET", "/v1/usage?from=2026-01-01&to=2026-04-02", key)
    assert response.status_code == 200
    assert response.json_body == {"days": [], "totals": dict.fromkeys(COUNTERS, 0)}


def test_tenant_usage_for_the_admin_needs_the_admin_key_and_a_known_tenant(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    path = f"/v1/tenants/{tenant_id}/usage?from={TODAY}&to={TODAY}"
    assert api.call("GET", path, key).status_code == 401
    missing = api.call("GET", f"/v1/tenants/ten_nope/usage?from={TODAY}&to={TODAY}", ADMIN_KEY)
    assert missing.status_code == 404


