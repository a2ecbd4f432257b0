"""Contract of SessionInbox: Redis list first, DynamoDB while Redis is down, nothing lost or taken twice."""

from __future__ import annotations

import boto3
import pytest
import redis
from botocore.config import Config
from redis.backoff import NoBackoff
from redis.retry import Retry

from chalicelib.domain.errors import Unavailable
from chalicelib.domain.session import SessionKey
from chalicelib.stores.inbox import SessionInbox
from tests.conftest import Aws, RedisServer
from tests.stores.test_dynamo_sessions import isolate_calls, run_together

KEY = SessionKey(tenant_id="acme", agent_id="support", channel="twilio", user_id="+15550001")
OTHER = KEY.model_copy(update={"user_id": "+15550002"})
AT = 1_800_000_000.0


@pytest.fixture
def inbox(any_aws: Aws, redis_client: redis.Redis) -> SessionInbox:
    return SessionInbox(redis_client, any_aws.dynamodb, any_aws.table, retry_redis_after_s=0)


def ids(messages: list[object]) -> list[str]:
    return [message.message_id for message in messages]  # type: ignore[attr-defined]


def test_pending_messages_come_in_the_order_they_were_received(inbox: SessionInbox) -> None:
    inbox.append(KEY, "m2", "and my order is 42", AT + 1)
    inbox.append(KEY, "m1", "hello", AT)
    inbox.append(OTHER, "x1", "someone else", AT)
    pending = inbox.pending(KEY)
    assert [(m.message_id, m.text, m.received_at) for m in pending] == [
        ("m1", "hello", AT),
        ("m2", "and my order is 42", AT + 1),
    ]
    assert ids(inbox.pending(KEY)) == ["m1", "m2"]  # reading does not take


def test_take_all_takes_every_waiting_message_once(inbox: SessionInbox) -> None:
    inbox.append(KEY, "m1", "hello", AT)
    inbox.append(KEY, "m1", "hello", AT)  # a redelivered append is not a second message
    inbox.append(KEY, "m2", "are you there?", AT + 1)
    assert ids(inbox.take_all(KEY)) == ["m1", "m2"]
    assert inbox.take_all(KEY) == []
    assert inbox.pending(KEY) == []
    assert ids(inbox.pending(OTHER)) == []


def test_concurrent_takers_never_get_the_same_message(any_aws: Aws, inbox: SessionInbox) -> None:
    isolate_calls(any_aws.dynamodb)
    for index in range(10):
        inbox.append(KEY, f"m{index}", "text", AT + index)
    taken = run_together(4, lambda _: ids(inbox.take_all(KEY)))
    everything = [message_id for batch in taken for message_id in batch]
    assert sorted(everything) == sorted(f"m{index}" for index in range(10))


def test_newer_than_says_whether_a_later_message_is_waiting(inbox: SessionInbox) -> None:
    assert inbox.newer_than(KEY, "m1") is False
    inbox.append(KEY, "m1", "hello", AT)
    assert inbox.newer_than(KEY, "m1") is False
    inbox.append(KEY, "m2", "wait, one more thing", AT + 1)
    assert inbox.newer_than(KEY, "m1") is True
    assert inbox.newer_than(KEY, "m2") is False
    inbox.take_all(KEY)
    inbox.append(KEY, "m3", "hello?", AT + 2)
    assert inbox.newer_than(KEY, "m2") is True  # m2 was taken by the running turn: m3 came after


def test_messages_appended_while_redis_is_down_reach_the_next_turn(
    any_aws: Aws,
    redis_client: redis.Redis,
    stoppable_redis: RedisServer,
) -> None:
    # GIVEN Redis stops and two messages arrive
    inbox = SessionInbox(redis_client, any_aws.dynamodb, any_aws.table, retry_redis_after_s=0)
    stoppable_redis.stop()
    inbox.append(KEY, "m1", "hello", AT)
    inbox.append(KEY, "m2", "still there?", AT + 1)
    # THEN they wait in DynamoDB, and a turn running meanwhile sees that it was superseded
    assert ids(inbox.pending(KEY)) == ["m1", "m2"]
    assert inbox.newer_than(KEY, "m1") is True
    # WHEN Redis is back and one more message arrives
    stoppable_redis.start()
    inbox.append(KEY, "m3", "hello??", AT + 2)
    # THEN the next turn takes the messages of both places, in order, once
    assert ids(inbox.pending(KEY)) == ["m1", "m2", "m3"]
    assert ids(inbox.take_all(KEY)) == ["m1", "m2", "m3"]
    assert inbox.take_all(KEY) == []


def test_take_all_while_redis_is_down_leaves_nothing_behind_in_dynamodb(
    any_aws: Aws,
    redis_client: redis.Redis,
    stoppable_redis: RedisServer,
) -> None:
    inbox = SessionInbox(redis_client, any_aws.dynamodb, any_aws.table, retry_redis_after_s=60)
    stoppable_redis.stop()
    inbox.append(KEY, "m1", "hello", AT)
    assert ids(inbox.take_all(KEY)) == ["m1"]
    assert inbox.pending(KEY) == []


def test_an_inbox_with_neither_backend_is_unavailable(redis_server: RedisServer) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    dynamo = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    inbox = SessionInbox(dead, dynamo, "no-table")
    with pytest.raises(Unavailable):
        inbox.append(KEY, "m1", "hello", AT)
    with pytest.raises(Unavailable):
        inbox.pending(KEY)


def test_an_inbox_without_redis_keeps_messages_in_dynamodb(any_aws: Aws) -> None:
    inbox = SessionInbox(None, any_aws.dynamodb, any_aws.table)
    inbox.append(KEY, "m1", "hello", AT)
    inbox.append(KEY, "m2", "again", AT + 1)
    assert inbox.newer_than(KEY, "m1") is True
    assert ids(inbox.take_all(KEY)) == ["m1", "m2"]
    assert inbox.pending(KEY) == []
