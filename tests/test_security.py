"""What a security reviewer checks, end to end through the in-process app over moto.

Keys, secrets, private addresses, racing editors, rollback, retried turns, handoff, bursts.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.runtime.limits import RATE_GATE
from tests.api.harness import Api, a_bundle, api, error_of, paths_of
from tests.runtime.test_lifecycle import desk_bundle

__all__ = ["api"]

TENANT_SECRET = "sk-tenant-SECRET-value-0001"
SIGNING_SECRET = "slack-signing-SECRET-0002"
BOT_TOKEN = "xoxb-bot-SECRET-token-0003"
EVENT_SECRET = "event-hmac-SECRET-0004"
SECRETS = (TENANT_SECRET, SIGNING_SECRET, BOT_TOKEN, EVENT_SECRET)


def test_a_revoked_key_is_refused_on_the_next_call(api: Api) -> None:
    _, key = api.new_tenant()
    second = api.call("POST", "/v1/keys", key).json_body
    assert api.call("GET", "/v1/agents", second["api_key"]).status_code == 200
    assert api.call("DELETE", f"/v1/keys/{second['key_id']}", key).status_code == 204
    refused = api.call("GET", "/v1/agents", second["api_key"])
    assert (refused.status_code, error_of(refused)["code"]) == (401, "unauthorized")
    assert api.call("GET", "/v1/agents", key).status_code == 200


def test_secrets_never_appear_in_a_get_a_log_line_a_turn_record_or_a_table_item(
    api: Api, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, log_lines: io.StringIO
) -> None:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/secrets/model-key", key, {"value": TENANT_SECRET}).status_code == 204
    assert api.call("PUT", "/v1/config", key, {"llm": {"api_key_secret": "model-key"}}).status_code == 200
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    binding = api.call("POST", "/v1/agents/support/channels", key,
                       {"channel": "slack", "secrets": {"signing_secret": SIGNING_SECRET, "bot_token": BOT_TOKEN}})
    assert binding.status_code == 201, binding.body
    endpoint = api.call("PUT", "/v1/event-endpoints/hooks", key,
                        {"url": "https://example.com/hooks", "events": ["turn_completed"], "secret": EVENT_SECRET})
    assert endpoint.status_code == 200
    turn = api.call("POST", "/v1/agents/support/turns", key, {"user_id": "u1", "message": "I want a refund"})
    assert turn.status_code == 200
    session = turn.json_body["session_id"]
    binding_id = binding.json_body["binding_id"]

    gets = [
        "/v1/config", "/v1/keys", "/v1/agents", "/v1/agents/support", "/v1/agents/support/versions",
        "/v1/agents/support/channels", f"/v1/agents/support/channels/{binding_id}",
        "/v1/event-endpoints", "/v1/event-endpoints/hooks", "/v1/agents/support/config/resolved",
        f"/v1/agents/support/sessions/{session}/turns", f"/v1/agents/support/sessions/{session}/messages",
        f"/v1/agents/support/interlocutors/{turn.json_body['interlocutor_id']}?history=true",
    ]
    shown = []
    for path in gets:
        response = api.call("GET", path, key)
        assert response.status_code == 200, (path, response.body)
        shown.append(response.body.decode())
    records = api.call("GET", f"/v1/agents/support/sessions/{session}/turns", key).json_body["turns"]
    logs = capsys.readouterr()
    assert "turn committed" in log_lines.getvalue()  # the service's log lines were read
    tables = [api.services.settings.table, api.services.settings.idempotency_table]
    items = [json.dumps(api.services.dynamodb.scan(TableName=table)["Items"], default=str) for table in tables]
    for secret in SECRETS:
        for text in (*shown, json.dumps(records), logs.out, logs.err, caplog.text, log_lines.getvalue(), *items):
            assert secret not in text
    assert records and tenant_id in items[0]  # the scans did read the tenant's items


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://10.0.0.1/"])
def test_an_llm_base_url_on_a_private_address_is_refused(api: Api, url: str) -> None:
    _, key = api.new_tenant()
    bundle = a_bundle(agent={"name": "Support", "config": {"llm": {"base_url": url}}})
    published = api.call("PUT", "/v1/agents/support", key, bundle)
    assert published.status_code == 422
    assert any(path.endswith("llm.base_url") for path in paths_of(published))
    assert api.call("GET", "/v1/agents/support", key).status_code == 404  # nothing half-written
    tenant = api.call("PUT", "/v1/config", key, {"llm": {"base_url": url}})
    assert (tenant.status_code, paths_of(tenant)) == (422, ["llm.base_url"])
    assert api.call("GET", "/v1/config", key).json_body == {}


def test_two_publishes_racing_from_the_same_if_match_give_one_409(api: Api) -> None:
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    # Both publishes read the head, then their commits go through one at a time (moto's transactions
    # are not isolated across threads; DynamoDB serialises them): the second must see the first.
    barrier, one_commit_at_a_time = threading.Barrier(2, timeout=30), threading.Lock()

    def hold(**_: Any) -> None:
        barrier.wait()
        one_commit_at_a_time.acquire()

    def release(**_: Any) -> None:
        one_commit_at_a_time.release()

    events = api.services.dynamodb.meta.events
    events.register("before-call.dynamodb.TransactWriteItems", hold)
    events.register("after-call.dynamodb.TransactWriteItems", release)
    statuses: dict[str, int] = {}

    def publish(name: str) -> None:
        bundle = a_bundle(agent={"name": name})
        statuses[name] = api.call("PUT", "/v1/agents/support", key, bundle, headers={"If-Match": "1"}).status_code

    threads = [threading.Thread(target=publish, args=(name,)) for name in ("left", "right")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", hold)
        events.unregister("after-call.dynamodb.TransactWriteItems", release)
    assert sorted(statuses.values()) == [200, 409]
    # Which body won is not asserted: Chalice keeps `app.current_request` on the app, not per thread,
    # so two in-process requests at once may read each other's body (a Lambda runs one at a time).
    versions = api.call("GET", "/v1/agents/support/versions", key).json_body["versions"]
    assert [info["version"] for info in versions] == [1, 2]
    assert api.call("GET", "/v1/agents/support", key).json_body["agent"]["name"] in {"left", "right"}


def hours_bundle(text: str) -> dict[str, Any]:
    bundle = desk_bundle()
    bundle["templates"][0]["text"] = text
    return bundle


def test_a_rollback_restores_the_old_behaviour_of_a_turn(api: Api) -> None:
    _, key = api.new_tenant()
    ask = {"user_id": "u1", "message": "when are your opening hours?"}
    api.call("PUT", "/v1/agents/desk", key, hours_bundle("Open 9 to 5."))
    api.call("PUT", "/v1/agents/desk", key, hours_bundle("Open 8 to 8."))
    assert api.call("POST", "/v1/agents/desk/turns", key, ask).json_body["reply"] == "Open 8 to 8."
    assert api.call("POST", "/v1/agents/desk/rollback", key, {"version": 1}).json_body["version"] == 3
    assert api.call("POST", "/v1/agents/desk/turns", key, ask).json_body["reply"] == "Open 9 to 5."


def test_a_retried_turn_with_one_idempotency_key_leaves_one_turn_record(api: Api) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/agents/desk", key, desk_bundle())
    body, headers = {"user_id": "u1", "message": "hello"}, {"Idempotency-Key": "order-42"}
    answers = [api.call("POST", "/v1/agents/desk/turns", key, body, headers=headers).json_body for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    records = api.call("GET", f"/v1/agents/desk/sessions/{answers[0]['session_id']}/turns", key).json_body["turns"]
    assert [record["turn_id"] for record in records] == [answers[0]["turn_id"]]


def test_after_a_handoff_the_agent_stays_silent_until_resumed(api: Api) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/agents/desk", key, desk_bundle())
    say = {"user_id": "u1", "message": "when are your opening hours?"}
    handed = api.call("POST", "/v1/agents/desk/turns", key,
                      {"user_id": "u1", "message": "let me speak to a human person"}).json_body
    assert handed["outcome"]["handoff"] is True
    for _ in range(2):
        silent = api.call("POST", "/v1/agents/desk/turns", key, say).json_body
        assert (silent["reply"], silent["outcome"]["handoff"]) == (None, True)
    api.call("POST", f"/v1/agents/desk/sessions/{handed['session_id']}/resume", key)
    assert api.call("POST", "/v1/agents/desk/turns", key, say).json_body["reply"] == "We are open 9am to 5pm."


@pytest.fixture
def minute(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    now = [1_800_000_000.0]  # the start of a one-minute window
    monkeypatch.setattr(RATE_GATE, "clock", lambda: now[0])
    yield now


def test_a_burst_over_the_rate_limit_is_429_then_recovers(api: Api, minute: list[float]) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/config", key, {"rate_limit": {"requests_per_minute": 5}})
    statuses = [api.call("GET", "/v1/agents", key).status_code for _ in range(8)]
    assert statuses == [200] * 4 + [429] * 4
    refused = api.call("GET", "/v1/agents", key)
    assert refused.headers["Retry-After"] == "60" and error_of(refused)["code"] == "rate_limited"
    minute[0] += 60
    assert api.call("GET", "/v1/agents", key).status_code == 200
