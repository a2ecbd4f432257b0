"""Idempotency-Key on the turn route: a retried POST answers the first result and runs no second turn."""

from __future__ import annotations

import threading
import time
from typing import Any

from chalicelib.domain.session import SessionKey
from tests.api.harness import Api, a_bundle, error_of

TURNS = "/v1/agents/support/turns"


def tenant_with_agent(api: Api) -> tuple[str, str]:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    return tenant_id, key


def turn(api: Api, key: str, body: dict[str, Any], idempotency_key: str | None = None) -> Any:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
    return api.call("POST", TURNS, key, body, headers=headers)


def records_of(api: Api, key: str, session_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"/v1/agents/support/sessions/{session_id}/turns", key)
    turns: list[dict[str, Any]] = response.json_body["turns"]
    return turns


def test_a_retried_post_with_the_same_key_answers_the_first_result_and_runs_one_turn(api: Api) -> None:
    _, key = tenant_with_agent(api)
    body = {"user_id": "u1", "message": "hello there"}
    first = turn(api, key, body, "retry-1")
    again = turn(api, key, body, "retry-1")
    assert first.status_code == again.status_code == 200
    assert again.json_body == first.json_body
    assert [record["turn_id"] for record in records_of(api, key, first.json_body["session_id"])] == [
        first.json_body["turn_id"]
    ]


def test_without_a_key_or_with_a_new_key_each_post_runs_its_own_turn(api: Api) -> None:
    _, key = tenant_with_agent(api)
    body = {"user_id": "u1", "message": "hello there"}
    first = turn(api, key, body, "k-1").json_body
    second = turn(api, key, body, "k-2").json_body
    third = turn(api, key, body).json_body
    assert len({first["turn_id"], second["turn_id"], third["turn_id"]}) == 3
    assert len(records_of(api, key, first["session_id"])) == 3


def test_a_key_is_per_tenant(api: Api) -> None:
    tenant_id, key = tenant_with_agent(api)
    other_id, other = tenant_with_agent(api)
    body = {"user_id": "u1", "message": "hello there"}
    mine = turn(api, key, body, "shared-key").json_body
    theirs = turn(api, other, body, "shared-key").json_body
    assert mine["turn_id"] != theirs["turn_id"]
    assert mine["session_id"] != theirs["session_id"]
    table = api.services.settings.idempotency_table
    ids = {item["id"]["S"] for item in api.services.dynamodb.scan(TableName=table)["Items"]}
    assert {record_id.split("#")[1] for record_id in ids} == {tenant_id, other_id}


def test_the_same_key_with_another_body_is_422(api: Api) -> None:
    _, key = tenant_with_agent(api)
    turn(api, key, {"user_id": "u1", "message": "hello there"}, "reused")
    response = turn(api, key, {"user_id": "u1", "message": "something else"}, "reused")
    assert response.status_code == 422
    assert error_of(response)["details"]["errors"][0]["path"] == "Idempotency-Key"


def test_a_malformed_key_is_422(api: Api) -> None:
    _, key = tenant_with_agent(api)
    response = turn(api, key, {"user_id": "u1", "message": "hi"}, "x" * 300)
    assert response.status_code == 422


def test_a_failed_turn_frees_its_key_so_the_retry_runs(api: Api) -> None:
    _, key = api.new_tenant()
    body = {"user_id": "u1", "message": "hello there"}
    assert turn(api, key, body, "early").status_code == 404  # the agent is not published yet
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    assert turn(api, key, body, "early").status_code == 200


def test_a_retry_while_the_first_post_runs_is_409_and_later_gets_the_first_result(api: Api) -> None:
    tenant_id, key = tenant_with_agent(api)
    body = {"user_id": "u1", "message": "hello there"}
    # GIVEN the session is busy (its lock held), so the first POST waits inside its turn
    session_key = SessionKey(tenant_id=tenant_id, agent_id="support", channel="api", user_id="u1")
    lock_name = f"session:{session_key.as_string()}"
    token = api.services.session_lock.acquire(lock_name, 30)
    assert token is not None
    answers: dict[str, Any] = {}
    first = threading.Thread(target=lambda: answers.update(first=turn(api, key, body, "slow")))
    first.start()
    try:
        _wait_for_in_progress_record(api)
        # WHEN the client retries meanwhile
        retry = turn(api, key, body, "slow")
    finally:
        api.services.session_lock.release(lock_name, token)
        first.join(timeout=30)
    # THEN the retry is refused with 409 and nothing ran twice
    assert (retry.status_code, error_of(retry)["code"]) == (409, "conflict")
    assert answers["first"].status_code == 200
    later = turn(api, key, body, "slow")
    assert later.json_body == answers["first"].json_body
    assert len(records_of(api, key, later.json_body["session_id"])) == 1


def _wait_for_in_progress_record(api: Api) -> None:
    table = api.services.settings.idempotency_table
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = api.services.dynamodb.scan(TableName=table)["Items"]
        if any(item["status"]["S"] == "INPROGRESS" for item in items):
            return
        time.sleep(0.02)
    raise AssertionError("the first POST never started")
