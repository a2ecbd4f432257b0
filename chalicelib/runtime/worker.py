"""The queue worker: turns that arrived through channel webhooks, run from the SQS FIFO queue.

One FIFO message group per session, so SQS keeps a session's messages in order and hands the
worker one at a time. Ingest also appends every message to the session's inbox, which is how
the worker batches and supersedes (DESIGN.md §3):

- the first record of a session in a batch takes every pending inbox message as ONE logical turn;
  later records whose messages were already answered find the inbox empty and are done;
- a message younger than the accumulation window holds its group: the record's visibility is
  extended by the rest of the window and it is reported as a batch item failure;
- at the commit point, a newer message in the inbox supersedes the turn (its reply is dropped)
  unless an irreversible tool already ran;
- a reply is delivered at most once per turn (a delivery key), after the commit.

Records are processed by Powertools' SqsFifoPartialProcessor with skip_group_on_error: a failing
session stops only its own group; the other sessions of the batch go on. A record that keeps
failing goes to the dead-letter queue after the queue's maxReceiveCount.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.session import Session, SessionKey
from chalicelib.runtime.delivery import deliver_reply
from chalicelib.runtime.events import deliver_event, is_event_message
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services, services
from chalicelib.runtime.turns import hold_session, open_session
from chalicelib.stores.ports import PublishedBundle

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from chalicelib.focal.pipeline import FocalResult
    from chalicelib.runtime.execute import CommitGate
    from chalicelib.stores.inbox import InboxMessage


class TurnMessage(BaseModel):
    """The body ingest sends to the turn queue for each inbound channel message."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    kind: str = "turn"
    tenant_id: str
    agent_id: str
    binding_id: str | None = None
    channel: str
    session_id: str | None = None  # None: ingest left opening the session to the worker
    user_id: str
    message_id: str
    text: str = Field(repr=False)
    reply_to: dict[str, Any] = Field(default_factory=dict)
    received_at: float = 0.0
    turn_id: str | None = None  # set by an asynchronous API turn, which answered with it


class HoldForAccumulation(Exception):
    """The session's newest message is younger than its accumulation window: wait for more."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(f"holding the session for {remaining_s:.2f} s more")
        self.remaining_s = remaining_s


def handle_batch(event: dict[str, Any], context: Any = None, svc: Services | None = None) -> dict[str, Any]:
    """The Lambda handler's body: {"batchItemFailures": [...]} for SQS to retry only those."""
    # Powertools' batch utilities load with the first batch, not at every route's cold start.
    from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415
        SqsFifoPartialProcessor,
        process_partial_response,
    )

    used = svc or services()
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # Report even an all-failed batch as item failures rather than raising: the result for SQS is
    # the same (every record comes back), and held records keep the visibility we gave them.
    processor.raise_on_entire_batch_failure = False

    def record_handler(record: SQSRecord) -> None:
        handle_record(used, record)

    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                         context=context))


def handle_record(svc: Services, record: SQSRecord) -> None:
    """Run the logical turn this record belongs to, unless an earlier record already answered it."""
    if is_event_message(record.body):  # outbound events share the turn queue (runtime/events.py)
        return deliver_event(svc, record)
    message = TurnMessage.model_validate_json(record.body)  # a poison body raises: retried, then DLQ
    key = SessionKey(tenant_id=message.tenant_id, agent_id=message.agent_id, channel=message.channel,
                     user_id=message.user_id)
    try:
        _run_logical_turn(svc, key, message)
    except HoldForAccumulation as hold:
        _extend_visibility(svc, record, hold.remaining_s)
        raise


def _run_logical_turn(svc: Services, key: SessionKey, message: TurnMessage) -> None:
    """The same reads as a sync turn (turns.py): two batched round trips under the lock, then FOCAL."""
    with hold_session(svc.session_lock, key):
        pending = svc.inbox.pending(key)
        if not pending:
            return  # answered together with an earlier message of this session
        start = svc.turn_reads.start(key)
        if start.latest_version is None:
            logger.info("turn message for an agent that no longer exists: dropped")
            return
        agent = svc.agents.version(key.tenant_id, key.agent_id, start.latest_version)
        published = agent.published
        try:
            session, data = open_session(svc, key, start, published, message.session_id)
        except (NotFound, Conflict):  # the session was erased or ended after the message was queued
            logger.info("turn message for a session that is gone or ended: dropped")
            return
        window_s = _accumulation_window_s(svc, published, session, start.tenant_layer)
        youngest = max(entry.received_at for entry in pending)
        remaining = youngest + window_s - time.time()
        if remaining > 0:
            raise HoldForAccumulation(remaining)
        from chalicelib.runtime.execute import execute_turn  # noqa: PLC0415 - the pipeline loads on first use

        text = "\n".join(entry.text for entry in pending)
        done = execute_turn(svc, agent, session, text, channel=key.channel, turn_id=message.turn_id,
                            may_commit=_commit_gate(svc, key, pending), tenant_layer=start.tenant_layer,
                            interlocutor=data, inbound=[(entry.message_id, entry.text) for entry in pending],
                            month=start.month)
    if done is not None and done.reply is not None:
        deliver_reply(svc, message.binding_id, key, done.turn_id, done.reply, reply_to=message.reply_to)


def _commit_gate(svc: Services, key: SessionKey, answered: list[InboxMessage]) -> CommitGate:
    last_id = answered[-1].message_id
    answered_ids = {entry.message_id for entry in answered}

    def may_commit(result: FocalResult | None) -> bool:
        irreversible_ran = result is not None and result.tools.irreversible_ran
        if svc.inbox.newer_than(key, last_id) and not irreversible_ran:
            return False  # superseded: the next turn takes every pending message as one
        taken = svc.inbox.take_all(key)
        for entry in taken:  # arrived after the check: keep them for the next turn
            if entry.message_id not in answered_ids:
                svc.inbox.append(key, entry.message_id, entry.text, entry.received_at)
        return True

    return may_commit


def _accumulation_window_s(svc: Services, published: PublishedBundle, session: Session,
                           tenant_layer: dict[str, Any]) -> float:
    state = session.scenario
    config = svc.resolver.for_turn(tenant_layer, published, channel=session.key.channel,
                                   scenario_id=state.scenario_id if state else None,
                                   step_id=state.step_id if state else None).config
    return config.session.accumulation_window_ms / 1000.0


def _extend_visibility(svc: Services, record: SQSRecord, remaining_s: float) -> None:
    queue_url = svc.settings.turn_queue_url
    if not queue_url or not record.receipt_handle:
        return
    svc.sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=record.receipt_handle,
                                      VisibilityTimeout=max(1, int(remaining_s + 0.999)))
