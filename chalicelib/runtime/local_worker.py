"""The local queue worker: long-polls the turn queue and calls the handler Lambda would call.

    python -m chalicelib.runtime.local_worker

`chalice local` serves HTTP routes but does not poll SQS; this loop stands in for the Lambda
event source mapping, ReportBatchItemFailures included: records in batchItemFailures are left on
the queue (they come back after their visibility timeout, then go to the dead-letter queue after
maxReceiveCount), every other record is deleted.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.runtime.faults import fault_point, install_commit_errors
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services, services
from chalicelib.runtime.worker import handle_batch

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef

DEFAULT_POLLERS = 2
Handler = Callable[[dict[str, Any]], dict[str, Any]]


def lambda_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """SQS ReceiveMessage output in the shape Lambda hands a function."""
    return {"Records": [{
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 3 else "us-east-1",
    } for message in messages]}


def poll_once(svc: Services, handler: Handler | None = None, wait_s: int = 2) -> int:
    """Receive one batch, handle it, delete what succeeded. Returns how many records it got."""
    queue_url = svc.settings.turn_queue_url
    received = svc.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s,
                                       AttributeNames=["All"], MessageAttributeNames=["All"])
    messages = received.get("Messages", [])
    if not messages:
        return 0
    arn = svc.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    event = lambda_event(messages, arn)
    result = (handler or (lambda e: handle_batch(e, None, svc)))(event)
    fault_point("before_delete")  # the turns are committed; the records are not deleted yet
    failed = {failure["itemIdentifier"] for failure in result.get("batchItemFailures", [])}
    done: list[DeleteMessageBatchRequestEntryTypeDef] = [
        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
        for index, message in enumerate(messages) if message["MessageId"] not in failed]
    if done:
        svc.sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)
    logger.info("batch handled", extra={"records": len(messages), "failed": len(failed)})
    return len(messages)


def pollers_wanted() -> int:
    """How many batches run at once (RUCHE_WORKER_POLLERS, default 2), as Lambda runs several
    invocations for different message groups: one slow batch does not stop the others."""
    raw = os.environ.get("RUCHE_WORKER_POLLERS", "")
    return max(1, int(raw)) if raw.isdigit() else DEFAULT_POLLERS


def main() -> int:
    svc = services()
    if not svc.settings.turn_queue_url:
        print("RUCHE_TURN_QUEUE_URL is not set: nothing to poll", file=sys.stderr)
        return 2
    install_commit_errors(svc.dynamodb)  # only when the fault suite asks (runtime/faults.py)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    def poll_until_stopped() -> None:
        while not stopping.is_set():
            try:
                poll_once(svc)
            except Exception:  # keep polling: one bad batch must not stop the local stack
                logger.exception("batch failed")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pollers = [threading.Thread(target=poll_until_stopped, name=f"poller-{index}", daemon=True)
               for index in range(pollers_wanted())]
    print(f"worker polling {svc.settings.turn_queue_url} with {len(pollers)} pollers", flush=True)
    for poller in pollers:
        poller.start()
    while not stopping.wait(0.5):
        pass
    for poller in pollers:
        poller.join(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
