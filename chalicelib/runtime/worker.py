"""The queue worker: turns that arrived through channel webhooks or async API calls, run from SQS FIFO.

The session inbox (stores/inbox.py, DynamoDB) is the durable copy of every accepted message; a
queue record is the wake-up call of one message's session. Each record runs through the turn
gateway (runtime/gateway.py) under its QUEUED_TURN policy; under the session lock:

- the record's message is no longer in the inbox: it was answered (its turn committed). The record
  is acknowledged without committing anything; if the turn named by this record's turn id was
  committed but its reply perhaps not delivered (a crash after the commit), it is delivered now,
  at most once (a delivery key);
- otherwise the oldest pending messages, at most gateway.MAX_MESSAGES_PER_TURN, are ONE logical turn. Its
  commit removes exactly those messages from the inbox, on the condition that they are still
  there, and claims its turn id, so a redelivered or concurrent duplicate commits nothing;
- a message younger than the accumulation window holds its group: the record's visibility is
  extended by the rest of the window and it is reported as a batch item failure;
- at the commit point, a message that arrived while the turn ran supersedes it (its reply is
  dropped) unless an irreversible tool already ran; the record then runs the next turn at once,
  which answers every pending message together. A record runs at most MAX_TURNS_PER_RECORD turns.

The turn id of a logical turn is that of its oldest message: the id an async API call answered
202 with, else one derived from the message id, so a retried record reuses it and the commit's
condition on it holds only once. Batches run per message group (runtime/batches.py). A record
that fails is logged with its exception, ids and receive count, retried by SQS, and after the
queue's maxReceiveCount lands in the dead-letter queue (runtime/dead_letters.py replays it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.runtime.batches import ReturnLater, run_batch
from chalicelib.runtime.delivery import ReplyRoute
from chalicelib.runtime.events import deliver_event
from chalicelib.runtime.gateway import MAX_MESSAGES_PER_TURN, QUEUED_TURN, Arrival, Skipped, run_turn
from chalicelib.runtime.queue_messages import EventMessage, TurnMessage, parse_queue_message
from chalicelib.runtime.services import Services, services

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

__all__ = ["MAX_MESSAGES_PER_TURN", "MAX_TURNS_PER_RECORD", "handle_batch", "handle_record"]

# Supersedes and backlogs a record works through before it hands itself back to the queue.
MAX_TURNS_PER_RECORD = 4


class NotAnsweredYet(ReturnLater):
    """The record's message is still pending after MAX_TURNS_PER_RECORD turns: back to the queue, at once."""


def handle_batch(event: dict[str, Any], context: Any = None, svc: Services | None = None) -> dict[str, Any]:
    """The Lambda handler's body: {"batchItemFailures": [...]} for SQS to retry only those."""
    return run_batch(svc or services(), event, handle_record, context=context)


def handle_record(svc: Services, record: SQSRecord) -> None:
    """Answer this record's message unless a committed turn already did. Raises HoldForAccumulation,
    NotAnsweredYet, and whatever a turn raised (the record is then retried, finally dead-lettered)."""
    message = parse_queue_message(record.body)  # a poison body raises: logged, retried, then DLQ
    if isinstance(message, EventMessage):  # outbound events share the turn queue (runtime/events.py)
        return deliver_event(svc, record, message)
    arrival = arrival_of(message)
    for _ in range(MAX_TURNS_PER_RECORD):
        outcome = run_turn(svc, arrival, QUEUED_TURN)
        if outcome in (Skipped.ALREADY_ANSWERED, Skipped.DROPPED):
            return
        # Not committed (superseded, raced): look again. Committed: done if it took the record's message.
        if not isinstance(outcome, Skipped) and message.message_id in outcome.message_ids:
            return
    raise NotAnsweredYet(f"message still pending after {MAX_TURNS_PER_RECORD} turns")


def arrival_of(message: TurnMessage) -> Arrival:
    """The gateway's view of a queue record: its message, its session, where its reply goes."""
    key = message.session_key
    route = ReplyRoute(key, message.binding_id, message.reply_to) if message.binding_id is not None else None
    return Arrival(key=key, text=message.text, session_id=message.session_id, message_id=message.message_id,
                   turn_id=message.turn_id, route=route)
