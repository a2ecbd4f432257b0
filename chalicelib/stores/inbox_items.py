"""The items by which a turn answers inbound messages: inbox keys, and the commit's answer items.

An accepted message waits at `T#<t>#INBOX#<session key hash>` / `M#<message id>` until the turn
that answers it commits. That commit deletes exactly those items, each on the condition that it
still exists, and writes the turn marker `TURN#<turn id>` on the condition that it does not: a
redelivered or duplicate turn fails a condition and writes nothing, and a turn id names one turn.
Pure item building, shared by the inbox (stores/inbox.py) and the session commit
(stores/dynamo_sessions.py); callers pass the session key hash so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.stores import items as it

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

MESSAGE_PREFIX = "M#"
TURN_MARKER_PREFIX = "TURN#"
# Longer than any queue record can live (SQS keeps 14 days, and a FIFO DLQ restarts that clock):
# a record whose message is not in the inbox was answered. TTL only sweeps what an erasure missed.
PENDING_TTL_S = 30 * 86_400


def inbox_pk(tenant_id: str, key_hash: str) -> str:
    return f"{it.tenant_pk(tenant_id)}#INBOX#{key_hash}"


def message_sk(message_id: str) -> str:
    return f"{MESSAGE_PREFIX}{message_id}"


def turn_marker_sk(turn_id: str) -> str:
    return f"{TURN_MARKER_PREFIX}{turn_id}"


@dataclass(frozen=True, slots=True)
class TurnMarker:
    """The item a committing turn leaves under its turn id: a retried delivery of the same turn finds
    there the session and turn that answered it (CommittedTurn)."""

    turn_id: str
    session_id: str
    turn_number: int
    expires_at: int  # epoch seconds, the marker's TTL


def answer_items(table: str, tenant_id: str, key_hash: str, *, message_ids: Sequence[str],
                 marker: TurnMarker) -> list[TransactWriteItemTypeDef]:
    """The deletes of the answered inbox items and the turn marker, each with its named condition."""
    pk = inbox_pk(tenant_id, key_hash)
    still_pending = "attribute_exists(pk)"
    turn_id_unused = "attribute_not_exists(pk)"
    answered: list[TransactWriteItemTypeDef] = [
        {"Delete": {"TableName": table, "Key": it.key(pk, message_sk(message_id)),
                    "ConditionExpression": still_pending}}
        for message_id in message_ids
    ]
    item = {"pk": it.s(pk), "sk": it.s(turn_marker_sk(marker.turn_id)), "session_id": it.s(marker.session_id),
            "turn_number": it.n(marker.turn_number), it.TTL_ATTRIBUTE: it.n(marker.expires_at)}
    return [*answered, {"Put": {"TableName": table, "Item": item, "ConditionExpression": turn_id_unused}}]
