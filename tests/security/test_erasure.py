"""Erasure reaches every copy: after DELETE of an interlocutor, an Idempotency-Key replay of one of
its turns no longer answers the erased reply; a deleted tenant's stored turn answers go with it."""

from __future__ import annotations

from typing import Any

from chalicelib.runtime.local_worker import poll_once
from tests.api.harness import ADMIN_KEY, Api
from tests.conftest import Aws
from tests.security.public_harness import public_api, table_items

__all__ = ["public_api"]

EMAIL = "alice.secret@example.com"
BUNDLE: dict[str, Any] = {
    "agent": {"name": "Contact"},
    "fields": [{"name": "email", "type": "email", "pii": True}],
    "templates": [{"id": "noted", "mode": "exclusive", "text": "Thanks, we will write to {{ email }}."}],
    "rules": [{"id": "contact", "condition": "the user gives their email address",
               "action": "confirm the email address", "templates": ["noted"]}],
}


def turn(api: Api, key: str, idempotency_key: str) -> Any:
    return api.call("POST", "/v1/agents/contact/turns", key,
                    {"user_id": "alice", "message": f"my email address is {EMAIL}"},
                    headers={"Idempotency-Key": idempotency_key})


def idempotency_items(aws: Aws) -> list[dict[str, Any]]:
    return list(aws.dynamodb.scan(TableName=aws.env["RUCHE_IDEMPOTENCY_TABLE"], ConsistentRead=True)["Items"])


def test_an_idempotency_replay_after_the_interlocutor_was_erased_does_not_return_its_email(
        public_api: Api, aws: Aws) -> None:
    _, key = public_api.new_tenant()
    assert public_api.call("PUT", "/v1/agents/contact", key, BUNDLE).status_code == 200
    first = turn(public_api, key, "retry-1")
    assert first.status_code == 200 and EMAIL in first.json_body["reply"]  # the turn answered with it
    interlocutor_id = first.json_body["interlocutor_id"]
    assert turn(public_api, key, "retry-1").json_body == first.json_body  # a replay is the first answer

    erased = public_api.call("DELETE", f"/v1/agents/contact/interlocutors/{interlocutor_id}", key)
    assert erased.status_code == 204
    assert not any(EMAIL in str(item) for item in idempotency_items(aws))
    replay = public_api.call("POST", "/v1/agents/contact/turns", key,
                             {"user_id": "alice", "message": f"my email address is {EMAIL}"},
                             headers={"Idempotency-Key": "retry-1"})
    # The same request runs as a new turn, for a new interlocutor: never the erased answer.
    assert replay.status_code == 200
    assert replay.json_body["interlocutor_id"] != interlocutor_id
    assert replay.json_body["turn_id"] != first.json_body["turn_id"]


def test_a_message_the_erased_interlocutor_left_waiting_is_dropped_and_never_answered(
        public_api: Api, aws: Aws) -> None:
    _, key = public_api.new_tenant()
    assert public_api.call("PUT", "/v1/agents/contact", key, BUNDLE).status_code == 200
    first = turn(public_api, key, "alice-1").json_body
    waiting = "please also write to alice.other@example.com"
    queued = public_api.call("POST", "/v1/agents/contact/turns?async=true", key,
                             {"user_id": "alice", "message": waiting})
    assert queued.status_code == 202
    assert any(waiting in str(item) for item in table_items(aws))  # it waits in the session's inbox

    erased = public_api.call("DELETE", f"/v1/agents/contact/interlocutors/{first['interlocutor_id']}", key)

    assert erased.status_code == 204
    assert not any(waiting in str(item) for item in table_items(aws))
    while poll_once(public_api.services, wait_s=0):  # the worker wakes for it and finds nothing to answer
        pass
    assert not any("alice.other" in str(item) for item in table_items(aws))
    gone = public_api.call("GET", f"/v1/agents/contact/sessions/{queued.json_body['session_id']}/turns", key)
    assert gone.status_code == 404  # erased with its interlocutor, and the worker opened nothing again


def test_erasing_one_interlocutor_keeps_another_ones_stored_answers(public_api: Api, aws: Aws) -> None:
    _, key = public_api.new_tenant()
    assert public_api.call("PUT", "/v1/agents/contact", key, BUNDLE).status_code == 200
    alice = turn(public_api, key, "alice-1").json_body
    bob = public_api.call("POST", "/v1/agents/contact/turns", key, {"user_id": "bob", "message": "hello"},
                          headers={"Idempotency-Key": "bob-1"}).json_body
    public_api.call("DELETE", f"/v1/agents/contact/interlocutors/{alice['interlocutor_id']}", key)
    again = public_api.call("POST", "/v1/agents/contact/turns", key, {"user_id": "bob", "message": "hello"},
                            headers={"Idempotency-Key": "bob-1"}).json_body
    assert again == bob
    assert len(idempotency_items(aws)) == 1


def test_a_deleted_tenants_stored_turn_answers_are_erased(public_api: Api, aws: Aws) -> None:
    tenant_id, key = public_api.new_tenant()
    other_id, other = public_api.new_tenant("other")
    for api_key in (key, other):
        assert public_api.call("PUT", "/v1/agents/contact", api_key, BUNDLE).status_code == 200
        assert turn(public_api, api_key, "retry-1").status_code == 200
    assert public_api.call("DELETE", f"/v1/tenants/{tenant_id}", ADMIN_KEY).status_code == 204
    remaining = [item["id"]["S"] for item in idempotency_items(aws)]
    assert len(remaining) == 1 and remaining[0].startswith(f"turn#{other_id}#")
