"""The queue worker: turns that arrived through channel webhooks or async API calls, run from SQS FIFO.

The session inbox (stores/inbox.py, DynamoDB) is the durable copy of every accepted message; a
queue record is the wake-up call of one message's session. For each record, under the session lock:

- the record's message is no longer in the inbox: it was answered (its turn committed). The record
  is acknowledged without committing anything; if the turn named by this record's turn id was
  committed but its reply perhaps not delivered (a crash after the commit), it is delivered now,
  at most once (a delivery key);
- otherwise the oldest pending messages, at most MAX_MESSAGES_PER_TURN, are ONE logical turn. Its
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

import hashlib
import time
from typing import TYPE_CHECKING, Any, Literal

from chalicelib.domain.bundle import PublishedBundle
from chalicelib.domain.errors import Conflict, NotFound, StaleSession
from chalicelib.domain.session import Session, SessionKey
from chalicelib.runtime.batches import ReturnLater, run_batch
from chalicelib.runtime.delivery import deliver_reply, pushes_replies
from chalicelib.runtime.events import deliver_event
from chalicelib.runtime.faults import fault_point
from chalicelib.runtime.log import logger, turn_keys
from chalicelib.runtime.queue_messages import EventMessage, TurnMessage, parse_queue_message
from chalicelib.runtime.services import Services, services
from chalicelib.runtime.turns import hold_session, open_session

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from chalicelib.domain.inbox import InboxMessage
    from chalicelib.focal.pipeline import FocalResult
    from chalicelib.runtime.execute import CommitGate, TurnDone

# At most this many messages make one logical turn: a transaction of 100 items holds the turn's
# own items, 2 per message (transcript entry + inbox delete) and room for field changes and
# counters; a longer backlog is answered over several turns, oldest first (docs/ARCHITECTURE.md).
MAX_MESSAGES_PER_TURN = 20
# Supersedes and backlogs a record works through before it hands itself back to the queue.
MAX_TURNS_PER_RECORD = 4
# A crashed worker's session is free again after this. A queued turn needs no longer lock: FIFO
# already runs one record per session, and if a slow turn outlives the lock and another turn takes
# it, the commit's fencing token, version and inbox conditions still let only one turn answer a
# message (a sync turn's lock is 90 s).
WORKER_LOCK_TTL_S = 30.0


DROPPED: Literal["dropped"] = "dropped"
NOT_COMMITTED: Literal["not_committed"] = "not_committed"


class HoldForAccumulation(ReturnLater):
    """The session's newest message is younger than its accumulation window: wait for more."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(f"holding the session for {remaining_s:.2f} s more", after_s=remaining_s)
        self.remaining_s = remaining_s


class NotAnsweredYet(ReturnLater):
    """The record's message is still pending after MAX_TURNS_PER_RECORD turns: back to the queue, at once."""


def handle_batch(event: dict[str, Any], context: Any = None, svc: Services | None = None) -> dict[str, Any]:
    """The Lambda handler's body: {"batchItemFailures": [...]} for SQS to retry only those."""
    return run_batch(svc or services(), event, handle_record, context=context)


def derived_turn_id(message_id: str) -> str:
    """The turn id of a turn led by this message when no API call named one: stable across retries."""
    return "turn_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def handle_record(svc: Services, record: SQSRecord) -> None:
    """Answer this record's message unless a committed turn already did. Raises HoldForAccumulation,
    NotAnsweredYet, and whatever a turn raised (the record is then retried, finally dead-lettered)."""
    message = parse_queue_message(record.body)  # a poison body raises: logged, retried, then DLQ
    if isinstance(message, EventMessage):  # outbound events share the turn queue (runtime/events.py)
        return deliver_event(svc, record, message)
    key = message.session_key
    # Every line of the record's turns carries its tenant and agent (the lock, the reads, the
    # delivery too), and its session and turn once they are known.
    with turn_keys(tenant_id=key.tenant_id, agent_id=key.agent_id, **_known_ids(message)):
        for _ in range(MAX_TURNS_PER_RECORD):
            if _run_logical_turn(svc, key, message):
                return
    raise NotAnsweredYet(f"message still pending after {MAX_TURNS_PER_RECORD} turns")


def _known_ids(message: TurnMessage) -> dict[str, str]:
    known = {"turn_id": message.turn_id, "session_id": message.session_id}
    return {name: value for name, value in known.items() if value is not None}


def _run_logical_turn(svc: Services, key: SessionKey, message: TurnMessage) -> bool:
    """One logical turn for the record's session; True once the record's message is answered or dropped."""
    with hold_session(svc.session_lock, key, ttl_s=WORKER_LOCK_TTL_S) as fence:
        pending = svc.inbox.pending(key)
        fault_point("after_inbox_read")
        batch = pending[:MAX_MESSAGES_PER_TURN]
        answered_already = message.message_id not in {entry.message_id for entry in pending}
        done = None if answered_already else _answer(svc, key, message, pending, batch, fence=fence)
    if answered_already or done is None:
        _deliver_if_undelivered(svc, key, message)
        return True
    if isinstance(done, str):  # dropped on purpose; or not committed (superseded, raced): look again
        return done == DROPPED
    if done.reply is not None:
        with turn_keys(turn_id=done.turn_id, session_id=done.session.session_id):
            deliver_reply(svc, message.binding_id, key, done.turn_id, done.reply, reply_to=message.reply_to)
    return message.message_id in {entry.message_id for entry in batch}


def _answer(svc: Services, key: SessionKey, message: TurnMessage, pending: list[InboxMessage],
            batch: list[InboxMessage], *, fence: int) -> TurnDone | Literal["dropped", "not_committed"]:
    """Run and commit the turn answering `batch`; DROPPED when its agent or session is gone."""
    start = svc.turn_reads.start(key)
    if start.latest_version is None:
        logger.info("turn messages for an agent that no longer exists: dropped", extra={"messages": len(pending)})
        svc.inbox.discard(key, [entry.message_id for entry in pending])
        return DROPPED
    agent = svc.agents.version(key.tenant_id, key.agent_id, start.latest_version)
    published = agent.published
    try:
        session, data = open_session(svc, key, start, published, message.session_id)
    except (NotFound, Conflict):  # the session was erased or ended after the message was queued
        logger.info("turn message for a session that is gone or ended: dropped",
                    extra={"message_id": message.message_id})
        svc.inbox.discard(key, [message.message_id])
        return DROPPED
    window_s = _accumulation_window_s(svc, published, session, start.tenant_layer)
    remaining = max(entry.received_at for entry in batch) + window_s - time.time()
    if remaining > 0:
        raise HoldForAccumulation(remaining)
    from chalicelib.runtime.execute import execute_turn  # noqa: PLC0415 - the pipeline loads on first use

    text = "\n".join(entry.text for entry in batch)
    turn_id = batch[0].turn_id or derived_turn_id(batch[0].message_id)
    # Supersede only a turn that took everything pending: a longer backlog is answered in order.
    may_commit = _commit_gate(svc, key, pending) if len(pending) <= MAX_MESSAGES_PER_TURN else None
    try:
        done = execute_turn(svc, agent, session, text, channel=key.channel, turn_id=turn_id, fence=fence,
                            may_commit=may_commit, tenant_layer=start.tenant_layer, interlocutor=data,
                            inbound=[(entry.message_id, entry.text) for entry in batch], month=start.month)
    except StaleSession as exc:  # another turn committed first (a lock taken over, a redelivery): look again
        logger.info("turn not committed: the session or its inbox moved on",
                    extra={"reason": exc.details.get("reason", "stale_session"), "turn_id": turn_id})
        return NOT_COMMITTED
    return NOT_COMMITTED if done is None else done


def _commit_gate(svc: Services, key: SessionKey, seen: list[InboxMessage]) -> CommitGate:
    seen_ids = [entry.message_id for entry in seen]

    def may_commit(result: FocalResult | None) -> bool:
        irreversible_ran = result is not None and result.tools.irreversible_ran
        # Superseded: the record's next turn takes every pending message as one.
        return irreversible_ran or not svc.inbox.arrived_since(key, seen_ids)

    return may_commit


def _deliver_if_undelivered(svc: Services, key: SessionKey, message: TurnMessage) -> None:
    """A record whose message was answered: if its own turn committed, make sure the reply went out.

    Only a crash between a commit and its delivery leaves work here; the delivery key makes a
    reply go out at most once however often this runs.
    """
    if not pushes_replies(key.channel) or message.binding_id is None:
        return  # api and webchat replies are read from the transcript
    committed = svc.sessions.committed_turn(key, message.turn_id or derived_turn_id(message.message_id))
    if committed is None:
        return  # answered by a turn another record led; that record delivers
    reply = svc.sessions.reply_of(key.tenant_id, committed.session_id, committed.turn_number)
    if reply is not None:
        turn_id = message.turn_id or derived_turn_id(message.message_id)
        deliver_reply(svc, message.binding_id, key, turn_id, reply, reply_to=message.reply_to)


def _accumulation_window_s(svc: Services, published: PublishedBundle, session: Session,
                           tenant_layer: dict[str, Any]) -> float:
    state = session.scenario
    config = svc.resolver.for_turn(tenant_layer, published, channel=session.key.channel,
                                   scenario_id=state.scenario_id if state else None,
                                   step_id=state.step_id if state else None).config
    return config.session.accumulation_window_ms / 1000.0
