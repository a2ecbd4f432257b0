"""Contract of SessionInbox: the durable DynamoDB copy of every accepted message, Redis or not."""

from __future__ import annotations

import boto3
import pytest
import redis
from botocore.config import Config

from chalicelib.domain.errors import Unavailable
from chalicelib.domain.inbox import DedupeMark, InboxMessage
from chalicelib.domain.session import SessionKey
from chalicelib.stores.inbox import SessionInbox
from tests.conftest import Aws, RedisServer

KEY = SessionKey(tenant_id="acme", agent_id="support", channel="twilio", user_id="+15550001")
OTHER = KEY.model_copy(update={"user_id": "+15550002"})
AT = 1_800_000_000.0


@pytest.fixture
def inbox(any_aws: Aws) -> SessionInbox:
    return SessionInbox(any_aws.dynamodb, any_aws.table)


def ids(messages: list[InboxMessage]) -> list[str]:
    return [message.message_id for message in messages]


def test_pending_messages_come_in_the_order_they_were_received(inbox: SessionInbox) -> None:
    inbox.append(KEY, "m2", "and my order is 42", AT + 1)
    inbox.append(KEY, "m1", "hello", AT, turn_id="turn_1")
    inbox.append(OTHER, "x1", "someone else", AT)
    pending = inbox.pending(KEY)
    assert [(m.message_id, m.text, m.received_at, m.turn_id) for m in pending] == [
        ("m1", "hello", AT, "turn_1"),
        ("m2", "and my order is 42", AT + 1, None),
    ]
    assert ids(inbox.pending(KEY)) == ["m1", "m2"]  # reading does not take


def test_a_repeated_append_is_one_message(inbox: SessionInbox) -> None:
    assert inbox.append(KEY, "m1", "hello", AT) is True
    assert inbox.append(KEY, "m1", "hello", AT + 5) is False  # a retried send is not a second message
    assert [(m.message_id, m.received_at) for m in inbox.pending(KEY)] == [("m1", AT)]


def test_a_redelivered_webhook_writes_nothing_even_after_its_message_was_answered(inbox: SessionInbox) -> None:
    mark = DedupeMark(channel="twilio", provider_message_id="SM1", ttl_s=3600)
    assert inbox.accept(KEY, InboxMessage("m1", "hello", AT), mark) is True
    inbox.discard(KEY, ["m1"])  # as the commit of the turn that answered it does
    assert inbox.accept(KEY, InboxMessage("m1", "hello", AT + 9), mark) is False
    assert inbox.pending(KEY) == []


def test_arrived_since_says_whether_a_message_came_after_those_read(inbox: SessionInbox) -> None:
    assert inbox.arrived_since(KEY, []) is False
    inbox.append(KEY, "m1", "hello", AT)
    assert inbox.arrived_since(KEY, ["m1"]) is False
    inbox.append(KEY, "m2", "wait, one more thing", AT + 1)
    assert inbox.arrived_since(KEY, ["m1"]) is True
    assert inbox.is_pending(KEY, "m2") is True
    assert inbox.is_pending(KEY, "m3") is False


def test_messages_survive_redis_losing_everything(
    any_aws: Aws,
    redis_client: redis.Redis,
    stoppable_redis: RedisServer,
) -> None:
    # GIVEN messages accepted while Redis runs
    inbox = SessionInbox(any_aws.dynamodb, any_aws.table)
    inbox.append(KEY, "m1", "hello", AT)
    inbox.append(KEY, "m2", "still there?", AT + 1)
    # WHEN Redis restarts empty
    stoppable_redis.stop()
    stoppable_redis.start()
    # THEN they are still waiting, in order, and a message accepted meanwhile joins them
    inbox.append(KEY, "m3", "hello??", AT + 2)
    assert ids(inbox.pending(KEY)) == ["m1", "m2", "m3"]


def test_an_inbox_without_dynamodb_is_unavailable() -> None:
    dynamo = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    inbox = SessionInbox(dynamo, "no-table")
    with pytest.raises(Unavailable):
        inbox.append(KEY, "m1", "hello", AT)
    with pytest.raises(Unavailable):
        inbox.accept(KEY, InboxMessage("m1", "hello", AT), DedupeMark("twilio", "SM1", 60))
    with pytest.raises(Unavailable):
        inbox.pending(KEY)
