"""Replay the turn queue's dead-letter queue: each dead record goes back to the turn queue once.

    POST /v1/dead-letters/replay   (platform admin key)  ->  {"replayed": n, "more": bool}

A record lands in the DLQ after the queue's maxReceiveCount failed receives (infra/template.yaml).
Its message is still pending in the session inbox (runtime/worker.py answers a message only by
the commit that takes it out), so replaying is safe at any time and any number of times: the
worker answers a message that is still pending once, and acknowledges a record whose message was
answered meanwhile without committing anything. A record is sent to the turn queue before it is
deleted from the DLQ, so a crash in between leaves an extra copy, never none. A record goes back
as its typed message (runtime/queue_messages.py: the production group, and a record queued
before `kind` was written gains it); a poison body goes back as it was, to fail again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from chalicelib.domain.errors import Unavailable
from chalicelib.runtime.log import logger
from chalicelib.runtime.queue_messages import parse_queue_message, send_request
from chalicelib.runtime.services import Services

MAX_PER_CALL = 500  # a call stays well inside API Gateway's 29 s; call again while `more`


@dataclass(frozen=True, slots=True)
class Replayed:
    replayed: int
    more: bool  # the DLQ may hold more: call again


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
                # A new id: the original's deduplication window may still be open.
                replay_id = hashlib.sha256(f"replay:{message['MessageId']}".encode()).hexdigest()
                try:
                    request = send_request(queue, parse_queue_message(message["Body"]), deduplication_id=replay_id)
                except ValidationError:
                    # The operator asked for the DLQ back; the worker fails and logs it again.
                    logger.warning("dead letter is not a queue message: replayed as it was",
                                   extra={"record_id": message["MessageId"]})
                    group = message.get("Attributes", {}).get("MessageGroupId") or "dead-letters"
                    request = {"QueueUrl": queue, "MessageBody": message["Body"], "MessageGroupId": group,
                               "MessageDeduplicationId": replay_id}
                svc.sqs.send_message(**request)
                svc.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
                logger.info("dead letter replayed", extra={"record_id": message["MessageId"]})
    except (ClientError, BotoCoreError) as exc:
        raise Unavailable("could not replay the dead-letter queue", replayed=moved) from exc
    return Replayed(replayed=moved, more=True)
