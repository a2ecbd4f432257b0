"""Delivering a committed reply: at most once per turn, and a failure becomes a delivery_failed event."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from chalicelib.domain.session import SessionKey
from chalicelib.runtime.delivery import ReplyRoute, deliver_reply
from chalicelib.runtime.services import reset_services, services
from tests.api.harness import Api, a_bundle
from tests.support.chat_server import ChatServer

SID, TOKEN = "AC00000000000000000000000000000009", "delivery-token"


@pytest.fixture
def twilio_api() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


@pytest.fixture
def bound(api: Api, twilio_api: ChatServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Api, str, str, str]:
    """(api, tenant key, tenant id, binding id) of an agent bound to a stand-in Twilio."""
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")
    reset_services()
    api.services = services()
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    created = api.call("POST", "/v1/agents/support/channels", key, {
        "channel": "twilio", "api_base_url": twilio_api.url, "secrets": {"account_sid": SID, "auth_token": TOKEN},
        "config": {"from": "+15559990000"}})
    assert created.status_code == 201, created.body
    return api, key, tenant_id, created.json_body["binding_id"]


def session_key(tenant_id: str) -> SessionKey:
    return SessionKey(tenant_id=tenant_id, agent_id="support", channel="twilio", user_id="+15550001")


def test_a_turn_is_delivered_once_however_often_delivery_is_attempted(
        bound: tuple[Api, str, str, str], twilio_api: ChatServer) -> None:
    api, _, tenant_id, binding_id = bound
    twilio_api.answer({"sid": "SM1"}, status=201)
    reply_to = {"to": "+15550001", "from": "+15559990000"}
    sent = [deliver_reply(api.services, ReplyRoute(session_key(tenant_id), binding_id, reply_to), "turn_1", "Hello!")
            for _ in range(3)]
    assert sent == [True, False, False]
    assert len(twilio_api.requests) == 1


def test_a_reply_on_a_pulled_channel_or_a_removed_binding_is_not_sent(
        bound: tuple[Api, str, str, str], twilio_api: ChatServer) -> None:
    api, key, tenant_id, binding_id = bound
    webchat = session_key(tenant_id).model_copy(update={"channel": "webchat"})
    assert deliver_reply(api.services, ReplyRoute(webchat, binding_id), "turn_2", "Hi") is False
    assert api.call("DELETE", f"/v1/agents/support/channels/{binding_id}", key).status_code == 204
    assert deliver_reply(api.services, ReplyRoute(session_key(tenant_id), binding_id, {"to": "+15550001"}),
                         "turn_3", "Hi") is False
    assert twilio_api.requests == []


def test_a_provider_refusal_is_reported_to_the_tenant_as_a_delivery_failed_event(
        bound: tuple[Api, str, str, str], twilio_api: ChatServer) -> None:
    api, key, tenant_id, binding_id = bound
    assert api.call("PUT", "/v1/event-endpoints/ops", key, {
        "url": twilio_api.url + "/events", "events": ["delivery_failed"],
        "secret": "a-long-enough-signing-secret"}).status_code in (200, 201)
    twilio_api.answer({"code": 21211, "message": "invalid To"}, status=400)  # 4xx: no retry
    sent = deliver_reply(api.services, ReplyRoute(session_key(tenant_id), binding_id,
                                                {"to": "+15550001", "from": "+15559990000"}), "turn_4", "Hello!")
    assert sent is False
    queued = api.services.sqs.receive_message(QueueUrl=api.services.settings.turn_queue_url,
                                              MaxNumberOfMessages=10)["Messages"]
    events = [json.loads(message["Body"]) for message in queued]
    assert [(event["kind"], event["type"], event["endpoint_id"]) for event in events] == [
        ("event", "delivery_failed", "ops")]
    assert events[0]["data"]["turn_id"] == "turn_4"
