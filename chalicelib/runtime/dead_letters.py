"""Replay the turn queue's dead-letter queue: each dead record goes back to the turn queue once.

    POST /v1/dead-letters/replay   (platform admin key)  ->  {"replayed": n, "more": bool}

A record lands in the DLQ after the queue's maxReceiveCount failed receives (infra/template.yaml).
Its message is still pending in the session inbox (runtime/worker.py answers a message only by
the commit that takes it out), so replaying is safe at any time and any number of times: the
worker answers a message that is still pending once, and acknowledges a record whose message was
answered meanwhile without committing anything. A record is sent to the turn queue before it is
deleted from the DLQ, so a crash in between leaves an extra copy, never none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import Unavailable
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services

MAX_PER_CALL = 500  # a call stays well inside API Gateway's 29 s; call again while `more`


@dataclass(frozen=True, slots=True)
class Replayed:
    replayed: int
    more: bool  # the DLQ may hold more: call again

    def to_json(self) -> dict[str, int | bool]:
        return {"replayed": self.replayed, "more": self.more}


def dead_letter_queue_url(svc: Services) -> str:
    """RUCHE_TURN_DLQ_URL, else the template's name for it next to the turn queue."""
    return svc.settings.turn_dlq_url or svc.settings.turn_queue_url.replace("-turns.fifo", "-turns-dlq.fifo")


def replay_dead_letters(svc: Services, limit: int = MAX_PER_CALL) -> Replayed:
    """Move up to `limit` records from the DLQ back to the turn queue. Raises Unavailable."""
    dlq, queue = dead_letter_queue_url(svc), svc.settings.turn_queue_url
    moved = 0
    try:
        while moved < limit:
            received = svc.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=min(10, limit - moved),
                                               WaitTimeSeconds=0, AttributeNames=["MessageGroupId"])
            messages = received.get("Messages", [])
            if not messages:
                return Replayed(replayed=moved, more=False)
            for message in messages:
                group = message.get("Attributes", {}).get("MessageGroupId") or "dead-letters"
                svc.sqs.send_message(
                    QueueUrl=queue, MessageBody=message["Body"], MessageGroupId=group,
                    # A new id: the original's deduplication window may still be open.
                    MessageDeduplicationId=hashlib.sha256(f"replay:{message['MessageId']}".encode()).hexdigest(),
                )
                svc.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
                logger.info("dead letter replayed", extra={"record_id": message["MessageId"]})
    except (ClientError, BotoCoreError) as exc:
        raise Unavailable("could not replay the dead-letter queue", replayed=moved) from exc
    return Replayed(replayed=moved, more=True)
