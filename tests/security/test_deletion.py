"""Deleting a tenant or an agent stops its public endpoints and nothing is written under it after.

The container that handles the DELETE forgets the bindings at once; another container may hold a
binding for ingest.BINDING_CACHE_S (5 s), and its posts are then refused by the liveness checks of
the first write (stores/liveness.py). "Another container" is played here by deleting through the
stores directly, so this container's binding cache still holds the binding.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.channel import ChannelName
from chalicelib.domain.errors import NotFound
from chalicelib.domain.session import SessionKey
from chalicelib.domain.turn import Outcome, TranscriptMessage, TurnCommit, TurnRecord
from chalicelib.runtime.ingest import BINDING_CACHE_S
from chalicelib.runtime.local_worker import poll_once
from tests.api.harness import ADMIN_KEY, Api
from tests.conftest import Aws
from tests.runtime.test_ingest import poll, post_twilio, post_webchat, queued, sms
from tests.security.public_harness import bound, public_api, table_items

__all__ = ["public_api"]


def keys_of(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(item["pk"]["S"], item["sk"]["S"]) for item in items}


def under_tenant(aws: Aws, tenant_id: str) -> list[tuple[str, str]]:
    """Every item of the tenant: its partitions, and global items naming it (lookups carry tenant_id)."""
    return sorted((item["pk"]["S"], item["sk"]["S"]) for item in table_items(aws)
                  if item["pk"]["S"] == f"T#{tenant_id}" or item["pk"]["S"].startswith(f"T#{tenant_id}#")
                  or item.get("tenant_id", {}).get("S") == tenant_id)


def drain(api: Api) -> None:
    for _ in range(20):
        if poll_once(api.services, wait_s=0) == 0:
            return


def test_the_cache_bound_is_a_few_seconds() -> None:
    assert BINDING_CACHE_S <= 5.0  # the documented bound (docs/operations.md, docs/SECURITY.md)


def test_after_an_agent_delete_its_bindings_refuse_posts_at_once_and_nothing_is_written(
        public_api: Api, aws: Aws) -> None:
    _, key, webchat = bound(public_api, ChannelName.WEBCHAT)
    twilio = public_api.call("POST", "/v1/agents/support/channels", key,
                             {"channel": "twilio", "secrets": {"account_sid": "AC1", "auth_token": "twilio-token"}}
                             ).json_body["binding_id"]
    visitor = post_webchat(public_api, webchat, {"message": "hello"}).json_body["visitor_token"]
    assert post_twilio(public_api, twilio, sms(sid="SM-before")).status_code == 200
    queued(aws)  # those two were taken before the deletion

    assert public_api.call("DELETE", "/v1/agents/support", key).status_code == 204
    before = keys_of(table_items(aws))
    assert post_webchat(public_api, webchat, {"message": "still there?", "visitor_token": visitor}).status_code == 404
    assert post_webchat(public_api, webchat, {"message": "new visitor"}).status_code == 404
    assert post_twilio(public_api, twilio, sms(sid="SM-after")).status_code == 404
    assert keys_of(table_items(aws)) == before
    assert queued(aws) == []
    assert public_api.call("GET", "/v1/agents/support/channels", key).status_code == 404


def test_a_binding_still_cached_by_another_container_writes_nothing_for_a_deleted_agent(
        public_api: Api, aws: Aws) -> None:
    tenant_id, _, webchat = bound(public_api, ChannelName.WEBCHAT)
    visitor = post_webchat(public_api, webchat, {"message": "hello"}).json_body["visitor_token"]  # cached here
    queued(aws)
    svc = public_api.services  # another container deletes the agent and its binding
    assert svc.bundles.delete(tenant_id, "support")
    assert svc.bindings.delete(tenant_id, webchat)

    before = keys_of(table_items(aws))
    for body in ({"message": "again", "visitor_token": visitor}, {"message": "someone new"}):
        refused = post_webchat(public_api, webchat, body)
        assert refused.status_code == 404 and refused.json_body["error"]["code"] == "not_found"
    assert keys_of(table_items(aws)) == before
    assert queued(aws) == []


def test_after_a_tenant_delete_its_webchat_refuses_posts_and_nothing_is_recreated_under_it(
        public_api: Api, aws: Aws) -> None:
    tenant_id, _, webchat = bound(public_api, ChannelName.WEBCHAT)
    visitor = post_webchat(public_api, webchat, {"message": "hello"}).json_body["visitor_token"]
    assert under_tenant(aws, tenant_id) != []

    assert public_api.call("DELETE", f"/v1/tenants/{tenant_id}", ADMIN_KEY).status_code == 204
    assert under_tenant(aws, tenant_id) == []
    for body in ({"message": "again", "visitor_token": visitor}, {"message": "someone new"}):
        assert post_webchat(public_api, webchat, body).status_code == 404
    drain(public_api)  # the turn queued before the deletion finds its agent gone
    assert under_tenant(aws, tenant_id) == []


def test_a_binding_still_cached_by_another_container_recreates_nothing_under_a_deleted_tenant(
        public_api: Api, aws: Aws) -> None:
    tenant_id, key, webchat = bound(public_api, ChannelName.WEBCHAT)
    twilio = public_api.call("POST", "/v1/agents/support/channels", key,
                             {"channel": "twilio", "secrets": {"account_sid": "AC1", "auth_token": "twilio-token"}}
                             ).json_body["binding_id"]
    visitor = post_webchat(public_api, webchat, {"message": "hello"}).json_body["visitor_token"]
    assert post_twilio(public_api, twilio, sms(sid="SM-before")).status_code == 200  # both now cached here
    public_api.services.tenants.delete(tenant_id)  # another container erases the tenant

    for body in ({"message": "again", "visitor_token": visitor}, {"message": "someone new"}):
        assert post_webchat(public_api, webchat, body).status_code == 404
    assert post_twilio(public_api, twilio, sms(sid="SM-after")).status_code == 404
    assert poll(public_api, webchat, visitor).status_code == 404  # reading the transcript recreates nothing
    drain(public_api)  # and the turns queued before the deletion run into a deleted tenant
    assert under_tenant(aws, tenant_id) == []


def test_a_turn_committing_after_its_agent_was_deleted_writes_nothing(public_api: Api, aws: Aws) -> None:
    tenant_id, key, _ = bound(public_api, ChannelName.WEBCHAT)
    svc = public_api.services
    session_key = SessionKey(tenant_id=tenant_id, agent_id="support", channel="api", user_id="u1")
    interlocutor = svc.interlocutors.resolve(tenant_id, "api", "u1")
    session = svc.sessions.open(session_key, interlocutor, 1_800_000_000.0)  # the turn is under way...
    assert public_api.call("DELETE", "/v1/agents/support", key).status_code == 204  # ...when the agent goes
    before = keys_of(table_items(aws))
    record = TurnRecord(turn_id="turn_late", session_id=session.session_id, tenant_id=tenant_id, agent_id="support",
                        agent_version=1, interlocutor_id=interlocutor, turn_number=1, channel="api",
                        message="hi", reply="late reply", outcome=Outcome(), created_at="2027-01-15T08:00:00Z")
    after = session.model_copy(update={"version": 1, "turn_count": 1})
    with pytest.raises(NotFound):
        svc.sessions.commit(TurnCommit(session=after, expected_version=0, record=record, now_s=1_800_000_001.0,
                                       transcript=[TranscriptMessage("m1", "agent", "late reply", "t")]))
    with pytest.raises(NotFound):
        svc.sessions.open(SessionKey(tenant_id=tenant_id, agent_id="support", channel="api", user_id="u2"),
                          interlocutor, 1_800_000_002.0)
    assert keys_of(table_items(aws)) == before

