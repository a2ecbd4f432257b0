"""The session inbox: accepted inbound messages waiting for the turn that answers them (DESIGN.md §3, §8).

The inbox is DynamoDB, always: `T#<t>#INBOX#<session key hash>` / `M#<message id>` (inbox_items.py).
An accepted message is written here before the webhook's 200 or the API's 202, and leaves only in
the transaction that commits the turn answering it (stores/dynamo_sessions.py), so a crash, a
commit error or Redis losing its data at any moment leaves it pending. Redis holds none of it.

A webhook's dedupe marker and its inbox item are written in ONE transaction (`accept`): a provider
retry after a crash finds either both (the message is in, pending or answered) or neither (it is
taken as new). Nothing here decides what a turn answers; the worker does (runtime/worker.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import NotFound, Unavailable
from chalicelib.domain.inbox import DedupeMark, InboxMessage
from chalicelib.domain.session import SessionKey, session_key_hash
from chalicelib.stores import items as it
from chalicelib.stores.field_versions import cancellation_codes, is_cancelled
from chalicelib.stores.inbox_items import MESSAGE_PREFIX, PENDING_TTL_S, inbox_pk, message_sk
from chalicelib.stores.liveness import is_gone, live_checks

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_DYNAMO_FAILED = (ClientError, BotoCoreError)






class SessionInbox:
    """Pending inbound messages per session key, in DynamoDB. Raises Unavailable when DynamoDB fails."""

    def __init__(self, dynamo_client: DynamoDBClient, table: str, *, ttl_s: int = PENDING_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._dynamo, self._table, self._ttl_s, self._clock = dynamo_client, table, ttl_s, clock

    def accept(self, key: SessionKey, message: InboxMessage, dedupe: DedupeMark | None = None) -> bool:
        """Store the message as pending; False when it was seen before (nothing written).

        With `dedupe`, the provider message id is marked seen in the same transaction (the marker
        of stores/dynamo_dedupe.py: an expired one counts as absent), which also checks that the
        tenant and the agent are alive (stores/liveness.py; NotFound, nothing written). Without it, the message id
        alone makes a repeated accept a no-op.
        """
        now = int(self._clock())
        item: it.Item = {
            "pk": it.s(inbox_pk(key.tenant_id, session_key_hash(key))),
            "sk": it.s(message_sk(message.message_id)),
            "message_id": it.s(message.message_id),
            "text": it.s(message.text),
            "received_at": it.n(message.received_at),
            it.TTL_ATTRIBUTE: it.n(now + self._ttl_s),
        }
        if message.turn_id:
            item["turn_id"] = it.s(message.turn_id)
        if dedupe is None:  # one conditional PutItem: no transaction needed
            return self._put_new(item)
        marker = it.key(it.dedupe_pk(key.tenant_id, dedupe.channel), dedupe.provider_message_id)
        if self._seen(marker, now):  # a redelivery costs one read, not a cancelled transaction
            return False
        marker[it.TTL_ATTRIBUTE] = it.n(now + dedupe.ttl_s)
        transaction: list[TransactWriteItemTypeDef] = [
            *live_checks(self._table, key.tenant_id, key.agent_id),  # nothing under a deleted tenant or agent
            {"Put": {"TableName": self._table, "Item": marker,  # the read above may race: the condition decides
                     "ConditionExpression": "attribute_not_exists(pk) OR #exp < :now",
                     "ExpressionAttributeNames": {"#exp": it.TTL_ATTRIBUTE},
                     "ExpressionAttributeValues": {":now": it.n(now)}}},
            {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
        ]
        try:
            self._dynamo.transact_write_items(TransactItems=transaction)
        except ClientError as exc:
            if is_gone(exc, transaction):  # a binding still cached after its tenant or agent was deleted
                raise NotFound("no such webhook (its tenant or agent was deleted)") from exc
            if is_cancelled(exc) and "ConditionalCheckFailed" in cancellation_codes(exc):
                return False  # seen before: the marker, or the message itself, is already there
            raise Unavailable("could not store the inbound message") from exc
        except BotoCoreError as exc:
            raise Unavailable("could not store the inbound message") from exc
        return True

    def _seen(self, marker: it.Item, now: int) -> bool:
        try:
            found = self._dynamo.get_item(TableName=self._table, Key=marker, ConsistentRead=True).get("Item")
        except _DYNAMO_FAILED as exc:
            raise Unavailable("could not read the dedupe marker") from exc
        return found is not None and it.number(found, it.TTL_ATTRIBUTE) >= now

    def _put_new(self, item: it.Item) -> bool:
        try:
            self._dynamo.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if it.is_condition_failure(exc):
                return False
            raise Unavailable("could not store the inbound message") from exc
        except BotoCoreError as exc:
            raise Unavailable("could not store the inbound message") from exc
        return True

    def append(self, key: SessionKey, message_id: str, text: str, received_at: float,
               turn_id: str | None = None) -> bool:
        """accept() without a dedupe marker; False when this message id is already pending."""
        return self.accept(key, InboxMessage(message_id, text, received_at, turn_id))

    def pending(self, key: SessionKey) -> list[InboxMessage]:
        """The waiting messages, oldest first (received_at, then message id), without taking them."""
        try:
            rows = list(it.partition_items(self._dynamo, self._table, inbox_pk(key.tenant_id, session_key_hash(key)),
                                           MESSAGE_PREFIX, consistent=True))
        except _DYNAMO_FAILED as exc:
            raise Unavailable("could not read the inbox") from exc
        return sorted((_from_item(row) for row in rows), key=lambda m: (m.received_at, m.message_id))

    def is_pending(self, key: SessionKey, message_id: str) -> bool:
        """True while the message waits for its turn (one consistent GetItem)."""
        try:
            found = self._dynamo.get_item(
                TableName=self._table, ConsistentRead=True,
                Key=it.key(inbox_pk(key.tenant_id, session_key_hash(key)), message_sk(message_id)))
        except _DYNAMO_FAILED as exc:
            raise Unavailable("could not read the inbox") from exc
        return "Item" in found

    def arrived_since(self, key: SessionKey, seen: Iterable[str]) -> bool:
        """True when a message is pending that is not among `seen` (it arrived after they were read)."""
        known = set(seen)
        return any(message.message_id not in known for message in self.pending(key))

    def discard(self, key: SessionKey, message_ids: Iterable[str]) -> None:
        """Remove messages no turn will answer (their agent or session is gone, or queueing failed)."""
        keys = [it.key(inbox_pk(key.tenant_id, session_key_hash(key)), message_sk(message_id))
                for message_id in message_ids]
        try:
            it.delete_keys(self._dynamo, self._table, keys)
        except _DYNAMO_FAILED as exc:
            raise Unavailable("could not update the inbox") from exc


def _from_item(row: it.Item) -> InboxMessage:
    return InboxMessage(
        message_id=it.text(row, "message_id"),
        text=it.text(row, "text"),
        received_at=float(row["received_at"]["N"]),
        turn_id=it.text(row, "turn_id") or None,
    )
