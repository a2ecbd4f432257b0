"""Put an inbound message on its session's way to a turn: the durable inbox, then the FIFO turn queue.

Shared by channel webhooks (runtime/ingest.py) and asynchronous API turns (runtime/turns.py).
The inbox item (DynamoDB) is the message's durable copy, written before the 200/202; the queue
record (group = the session key) wakes the worker, which answers whatever is pending in order
(runtime/worker.py). A record whose message was already answered commits nothing, so sending a
record twice is harmless; a message without any record would wait for the session's next one,
which is why a failed send is undone (API) or redone by the provider's retry (webhooks).
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import Unavailable
from chalicelib.runtime.log import logger
from chalicelib.runtime.queue_messages import TurnMessage, send_request
from chalicelib.runtime.services import Services


def queue_turn(svc: Services, message: TurnMessage) -> None:
    """Store the message as pending and send its record; an API turn's path.

    Raises Unavailable when the message could not be queued, after taking it out of the inbox
    again (the caller answers 503 and the client retries as a new message).
    """
    key = message.session_key
    svc.inbox.append(key, message.message_id, message.text, message.received_at, message.turn_id)
    try:
        send_record(svc, message)
    except Unavailable:
        try:
            svc.inbox.discard(key, [message.message_id])
        except Unavailable:  # it stays pending and is answered with the session's next message
            logger.warning("a message that could not be queued stays in the inbox",
                           extra={"message_id": message.message_id})
        raise


def send_record(svc: Services, message: TurnMessage) -> None:
    """Send the SQS FIFO record of a message already in the inbox (runtime/queue_messages.py).

    SQS drops a resend within its 5-minute deduplication window, and the worker acknowledges a
    later one. Raises Unavailable when SQS cannot be reached.
    """
    try:
        svc.sqs.send_message(**send_request(svc.settings.turn_queue_url, message))
    except (ClientError, BotoCoreError) as exc:
        raise Unavailable("could not enqueue the turn") from exc
