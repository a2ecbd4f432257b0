"""One SQS batch of the turn queue: tenants side by side, each tenant's records in order, under a time bound.

A FIFO message group is one session (ingest sets it). Powertools' SqsFifoPartialProcessor
(skip_group_on_error=True) runs a group's records in order and fails the rest of a group after its
first failure. Here each message group gets its own processor, and each tenant's groups run in
their own thread (a lane), so a slow turn of tenant A never waits in front of tenant B's record in
the same batch (DESIGN.md §7: another tenant's reply is delayed by at most 5 s beyond its own
work). In a lane, no record STARTS later than BATCH_BOUND_S after the batch began: the rest are
handed back for the next invocation (a copy is queued, so the hand-back never counts toward the
DLQ's maxReceiveCount), so a tenant's slow turns do not keep the invocation, and the poller, busy.

Every record that fails is logged here with its exception, ids and receive count; SQS retries it
and after the queue's maxReceiveCount moves it to the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from chalicelib.runtime.log import logger, record_keys
from chalicelib.runtime.services import Services

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# No record of a group starts this long after its batch began; it goes back to the queue instead.
BATCH_BOUND_S = 5.0
MAX_PARALLEL_LANES = 10  # a batch holds at most 10 records

RecordHandler = Callable[[Services, "SQSRecord"], None]


class ReturnLater(Exception):
    """Not a failure of the record: it should come back after `after_s` seconds (0 = at once)."""

    def __init__(self, reason: str, after_s: float = 0.0) -> None:
        super().__init__(reason)
        self.after_s = after_s


def run_batch(svc: Services, event: dict[str, Any], handler: RecordHandler, *, context: Any = None,
              bound_s: float = BATCH_BOUND_S) -> dict[str, Any]:
    """{"batchItemFailures": [...]}: the records SQS should hand out again (and nothing else)."""
    lanes: dict[str, dict[str, list[dict[str, Any]]]] = {}  # tenant -> message group -> records
    for record in event.get("Records", []):
        group = record.get("attributes", {}).get("MessageGroupId") or record.get("messageId", "")
        lanes.setdefault(_tenant_of(record), {}).setdefault(group, []).append(record)
    run = _GroupRunner(svc, handler, started_at=time.monotonic(), bound_s=bound_s, context=context)

    def run_lane(groups: dict[str, list[dict[str, Any]]]) -> list[str]:
        return [identifier for records in groups.values() for identifier in run(records)]

    if len(lanes) <= 1:
        failed = [run_lane(groups) for groups in lanes.values()]
    else:
        with ThreadPoolExecutor(max_workers=min(len(lanes), MAX_PARALLEL_LANES),
                                thread_name_prefix="turn-lane") as pool:
            failed = list(pool.map(run_lane, lanes.values()))
    failures = [identifier for lane_failures in failed for identifier in lane_failures]
    return {"batchItemFailures": [{"itemIdentifier": identifier} for identifier in failures]}


def _tenant_of(record: dict[str, Any]) -> str:
    """The tenant a record belongs to ('' for a body that is not ours: it fails on its own lane)."""
    try:
        body = json.loads(record.get("body", ""))
    except ValueError:
        return ""
    tenant = body.get("tenant_id") if isinstance(body, dict) else None
    return tenant if isinstance(tenant, str) else ""


class _GroupRunner:
    """Runs one message group's records in order with Powertools; returns the failed message ids."""

    def __init__(self, svc: Services, handler: RecordHandler, *, started_at: float, bound_s: float,
                 context: Any) -> None:
        self._svc, self._handler, self._context = svc, handler, context
        self._started_at, self._bound_s = started_at, bound_s

    def __call__(self, records: list[dict[str, Any]]) -> list[str]:
        # Powertools' batch utilities load with the first batch, not at every route's cold start.
        from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415
            SqsFifoPartialProcessor,
            process_partial_response,
        )

        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # Report even an all-failed group as item failures rather than raising: the result for SQS
        # is the same (every record comes back), and held records keep the visibility we gave them.
        processor.raise_on_entire_batch_failure = False
        started: set[str] = set()

        def record_handler(record: SQSRecord) -> None:
            started.add(record.message_id)
            self._handle(record)

        result = process_partial_response(event={"Records": records}, record_handler=record_handler,
                                          processor=processor, context=self._context)
        failed = [str(failure["itemIdentifier"]) for failure in result.get("batchItemFailures", [])]
        # Records skipped after their group's failure were never started: visible again at once
        # (SQS FIFO still hands them out only after the record in front of them).
        for record in records:
            if record["messageId"] in failed and record["messageId"] not in started:
                self._come_back(record.get("receiptHandle", ""), 0.0)
        return failed

    def _handle(self, record: SQSRecord) -> None:
        attempt = int(record.attributes.approximate_receive_count or 0)
        with record_keys(record_id=record.message_id, receive_count=attempt):
            if time.monotonic() - self._started_at > self._bound_s:
                logger.info("batch time bound spent: record handed back unstarted")
                self._hand_back(record, 0.0)
                return
            try:
                self._handler(self._svc, record)
            except ReturnLater as later:
                logger.info("record returns to the queue later", extra={"after_s": round(later.after_s, 3),
                                                                         "reason": str(later)})
                self._hand_back(record, later.after_s)
                if later.after_s > 0:
                    raise  # held: the record itself waits (its group waits behind it)
            except Exception:
                # Never swallowed: logged with its ids and attempt, then retried by SQS (DLQ at the end).
                logger.exception("turn record failed", extra={"group": record.attributes.message_group_id})
                raise

    def _hand_back(self, record: SQSRecord, after_s: float) -> None:
        """Back to the queue without counting as a failed receive (maxReceiveCount is for poison):
        at once, a copy is queued and this record succeeds. A record only wakes its session's
        worker (the inbox holds the message and its order), so a copy behind the group's later
        records, or an extra copy after a crash, changes nothing. Later: the record's visibility."""
        queue_url = self._svc.settings.turn_queue_url
        if after_s > 0 or not queue_url:
            self._come_back(record.receipt_handle, after_s)
            return
        attempt = record.attributes.approximate_receive_count or "0"
        try:
            self._svc.sqs.send_message(
                QueueUrl=queue_url, MessageBody=record.body,
                MessageGroupId=record.attributes.message_group_id or record.message_id,
                MessageDeduplicationId=hashlib.sha256(f"{record.message_id}:again:{attempt}".encode()).hexdigest())
        except Exception as exc:  # not queued: the record itself comes back (and counts a receive)
            logger.warning("could not queue a record again", exc_info=True)
            self._come_back(record.receipt_handle, 0.0)
            raise ReturnLater("could not queue the record again") from exc

    def _come_back(self, receipt_handle: str, after_s: float) -> None:
        queue_url = self._svc.settings.turn_queue_url
        if not queue_url or not receipt_handle:
            return
        try:
            self._svc.sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle,
                                                    VisibilityTimeout=max(0, int(after_s + 0.999)))
        except Exception:  # the record then simply comes back after the queue's visibility timeout
            logger.warning("could not change a record's visibility", exc_info=True)
