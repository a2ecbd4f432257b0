"""The session inbox: inbound messages waiting for a turn (DESIGN.md §3, supersede and batching).

Ingest appends every inbound message here before enqueueing it; a running turn asks newer_than()
at its commit point, and the next turn take_all()s the pending messages as one logical turn.
Messages live in a Redis list; while Redis is unreachable they go to DynamoDB items instead
(`T#<t>#INBOX#<session key hash>`), so Redis down never loses a message. Reads look at both places
whenever Redis answers: one Redis round trip plus one DynamoDB Query. That Query is what lets a
message written during an outage reach the next turn; nothing short of reading DynamoDB can know
such a message exists.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import Unavailable
from chalicelib.domain.session import SessionKey
from chalicelib.stores import items as it
from chalicelib.stores.dynamo_sessions import session_key_hash

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)

_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
_DYNAMO_FAILED = (ClientError, BotoCoreError)


@dataclass(frozen=True, slots=True)
class InboxMessage:
    message_id: str
    text: str
    received_at: float  # epoch seconds; the order of the inbox


def inbox_pk(key: SessionKey) -> str:
    return f"{it.tenant_pk(key.tenant_id)}#INBOX#{session_key_hash(key)}"


class SessionInbox:
    """Pending inbound messages per session key. Raises Unavailable only when both backends fail."""

    def __init__(
        self,
        redis_client: redis.Redis | None,
        dynamo_client: DynamoDBClient,
        table: str,
        *,
        prefix: str = "ruche:inbox:",
        ttl_s: int = 86_400,
        retry_redis_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis, self._dynamo, self._table = redis_client, dynamo_client, table
        self._prefix, self._ttl_s = prefix, ttl_s
        self._retry_after_s, self._clock = retry_redis_after_s, clock
        self._redis_down_until = 0.0

    def append(self, key: SessionKey, message_id: str, text: str, received_at: float) -> None:
        """Add a message; Redis first, a DynamoDB item when Redis is unreachable."""
        entry = json.dumps({"id": message_id, "text": text, "at": received_at})
        if (client := self._usable_redis()) is not None:
            try:
                with client.pipeline(transaction=True) as pipe:
                    pipe.rpush(self._list(key), entry)
                    pipe.expire(self._list(key), self._ttl_s)
                    pipe.execute()
                return
            except _REDIS_DOWN:
                self._mark_redis_down("append")
        item = {
            "pk": it.s(inbox_pk(key)),
            "sk": it.s(f"M#{received_at:017.6f}#{message_id}"),
            "message_id": it.s(message_id),
            "text": it.s(text),
            "received_at": it.n(received_at),
            it.TTL_ATTRIBUTE: it.n(int(time.time()) + self._ttl_s),
        }
        try:
            self._dynamo.put_item(TableName=self._table, Item=item)
        except _DYNAMO_FAILED as exc:
            raise Unavailable("neither redis nor dynamodb took the inbound message") from exc

    def pending(self, key: SessionKey) -> list[InboxMessage]:
        """The waiting messages, oldest first, without taking them."""
        from_redis: list[bytes] = []
        if (client := self._usable_redis()) is not None:
            try:
                from_redis = client.lrange(self._list(key), 0, -1)  # type: ignore[assignment]
            except _REDIS_DOWN:
                self._mark_redis_down("pending")
        return _merge(from_redis, [_from_item(row) for row in self._dynamo_rows(key)])

    def take_all(self, key: SessionKey) -> list[InboxMessage]:
        """Take every waiting message, oldest first. Two concurrent takers never get the same one."""
        from_redis: list[bytes] = []
        if (client := self._usable_redis()) is not None:
            try:
                with client.pipeline(transaction=True) as pipe:  # MULTI: read and clear as one
                    pipe.lrange(self._list(key), 0, -1)
                    pipe.delete(self._list(key))
                    from_redis = pipe.execute()[0]
            except _REDIS_DOWN:
                self._mark_redis_down("take_all")
        taken = []
        for row in self._dynamo_rows(key):
            try:  # a delete that returns the item is this caller's: the per-item atomic take
                old = self._dynamo.delete_item(
                    TableName=self._table,
                    Key=it.key(it.text(row, "pk"), it.text(row, "sk")),
                    ReturnValues="ALL_OLD",
                ).get("Attributes")
            except _DYNAMO_FAILED as exc:
                raise Unavailable("could not take inbox messages") from exc
            if old:
                taken.append(_from_item(old))
        return _merge(from_redis, taken)

    def newer_than(self, key: SessionKey, message_id: str) -> bool:
        """True when a message is waiting that came after `message_id` (any waiting one, if it was taken)."""
        ids = [message.message_id for message in self.pending(key)]
        if message_id in ids:
            return ids.index(message_id) < len(ids) - 1
        return bool(ids)

    # --- helpers ---------------------------------------------------------------------------------

    def _list(self, key: SessionKey) -> str:
        return f"{self._prefix}{key.tenant_id}:{session_key_hash(key)}"

    def _dynamo_rows(self, key: SessionKey) -> list[it.Item]:
        try:
            return list(it.partition_items(self._dynamo, self._table, inbox_pk(key), consistent=True))
        except _DYNAMO_FAILED as exc:
            raise Unavailable("could not read the inbox") from exc

    def _usable_redis(self) -> redis.Redis | None:
        """The Redis client while it is thought up; None without one (no REDIS_URL: DynamoDB alone)."""
        if self._redis is None or self._clock() < self._redis_down_until:
            return None
        return self._redis

    def _mark_redis_down(self, operation: str) -> None:
        self._redis_down_until = self._clock() + self._retry_after_s
        logger.warning("redis unreachable: inbox falls back to DynamoDB", extra={"operation": operation})


def _from_item(row: it.Item) -> InboxMessage:
    return InboxMessage(
        message_id=it.text(row, "message_id"),
        text=it.text(row, "text"),
        received_at=float(row["received_at"]["N"]),
    )


def _merge(redis_entries: list[bytes], dynamo_messages: list[InboxMessage]) -> list[InboxMessage]:
    """Both sources in received order, each message once (a redelivered append is not a new message)."""
    messages = [
        InboxMessage(message_id=raw["id"], text=raw["text"], received_at=float(raw["at"]))
        for raw in (json.loads(entry) for entry in redis_entries)
    ]
    unique: dict[str, InboxMessage] = {}
    for message in sorted(messages + dynamo_messages, key=lambda m: (m.received_at, m.message_id)):
        unique.setdefault(message.message_id, message)
    return list(unique.values())
