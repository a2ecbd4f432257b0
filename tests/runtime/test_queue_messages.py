"""The turn queue's one message type: bodies, production groups, deduplication ids, old records."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import ValidationError

from chalicelib.domain.event import EventType
from chalicelib.domain.session import SessionKey, session_key_hash
from chalicelib.runtime.queue_messages import EventMessage, TurnMessage, parse_queue_message, send_request

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/ruche-test-turns.fifo"
KEY = SessionKey(tenant_id="t1", agent_id="desk", channel="twilio", user_id="+15550001")


def a_turn(**fields: str) -> TurnMessage:
    return TurnMessage(tenant_id=KEY.tenant_id, agent_id=KEY.agent_id, channel=KEY.channel, user_id=KEY.user_id,
                       message_id="msg_1", text="Où est ma commande ?", reply_to={"to": "+15550001"},
                       received_at=1700000000.5, **fields)


def an_event() -> EventMessage:
    return EventMessage(id="evt_1", type=EventType.HANDOFF, created_at="2024-01-01T00:00:00Z", tenant_id="t1",
                        endpoint_id="ops", data={"turn_id": "turn_1"})


def test_a_turn_is_sent_in_its_sessions_group_deduplicated_by_its_message_id() -> None:
    request = send_request(URL, a_turn(turn_id="turn_1"))
    assert request["QueueUrl"] == URL
    assert request["MessageGroupId"] == session_key_hash(KEY)
    assert request["MessageDeduplicationId"] == hashlib.sha256(b"msg_1").hexdigest()
    assert json.loads(request["MessageBody"])["kind"] == "turn"
    assert parse_queue_message(request["MessageBody"]) == a_turn(turn_id="turn_1")


def test_an_event_is_sent_in_its_endpoints_group_deduplicated_by_its_id() -> None:
    request = send_request(URL, an_event())
    assert (request["MessageGroupId"], request["MessageDeduplicationId"]) == ("event-t1#ops", "evt_1")
    assert json.loads(request["MessageBody"])["kind"] == "event"
    parsed = parse_queue_message(request["MessageBody"])
    assert isinstance(parsed, EventMessage) and parsed == an_event()
    assert parsed.body() == {"id": "evt_1", "type": "handoff", "created_at": "2024-01-01T00:00:00Z",
                             "tenant_id": "t1", "data": {"turn_id": "turn_1"}}


def test_a_resend_on_purpose_takes_its_own_deduplication_id() -> None:
    assert send_request(URL, a_turn(), deduplication_id="replay-1")["MessageDeduplicationId"] == "replay-1"


def test_bodies_the_previous_version_queued_still_parse_as_what_they_are() -> None:
    # Turn records without `kind` (before it was required), and with the fields of that time only.
    old_turn = {"tenant_id": "t1", "agent_id": "desk", "binding_id": None, "channel": "twilio", "session_id": None,
                "user_id": "+15550001", "message_id": "msg_1", "text": "Où est ma commande ?",
                "reply_to": {"to": "+15550001"}, "received_at": 1700000000.5, "turn_id": None,
                "provider_message_id": "SM1"}
    parsed = parse_queue_message(json.dumps(old_turn, ensure_ascii=False))
    assert isinstance(parsed, TurnMessage) and parsed.session_key == KEY and parsed.kind == "turn"
    assert parsed.provider_message_id == "SM1"
    # The events of that time, written with compact separators and `kind` first.
    old_event = json.dumps({"kind": "event", "id": "evt_1", "type": "handoff", "created_at": "2024-01-01T00:00:00Z",
                            "tenant_id": "t1", "endpoint_id": "ops", "data": {"turn_id": "turn_1"}},
                           separators=(",", ":"))
    assert parse_queue_message(old_event) == an_event()


def test_a_newer_producers_extra_turn_fields_are_ignored() -> None:
    body = json.loads(send_request(URL, a_turn())["MessageBody"])
    assert parse_queue_message(json.dumps({**body, "added_later": 1})) == a_turn()


@pytest.mark.parametrize("body", [
    "{not json", "[1]", '"secret words"', '{"kind": null, "text": "secret words"}',
    '{"kind": "nope", "text": "secret words"}', '{"kind": "turn", "text": "secret words"}',
    '{"kind": "event", "id": "evt_1", "text": "secret words"}'])
def test_a_poison_body_raises_without_echoing_it(body: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_queue_message(body)
    assert "secret words" not in str(raised.value)
