"""Put an inbound message on its session's way to a turn: the inbox, then the FIFO turn queue.

Shared by channel webhooks (runtime/ingest.py) and asynchronous API turns (runtime/turns.py).
The worker (runtime/worker.py) reads both: the queue orders a session's messages, the inbox lets
one turn answer every message waiting together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import Unavailable
from chalicelib.domain.session import SessionKey
from chalicelib.runtime.services import Services
from chalicelib.stores.dynamo_sessions import session_key_hash


def queue_turn(svc: Services, key: SessionKey, *, message_id: str, text: str, received_at: float,
               session_id: str | None = None, binding_id: str | None = None,
               reply_to: Mapping[str, Any] | None = None, turn_id: str | None = None,
               extra: Mapping[str, Any] | None = None) -> None:
    """Append to the inbox and send one SQS FIFO message (group = the session key).

    Raises Unavailable when the message could not be queued (the caller answers 503 so the sender
    retries). The deduplication id is the message id: a retried send is dropped by SQS.
    """
    svc.inbox.append(key, message_id, text, received_at)
    body = {
        "kind": "turn", "tenant_id": key.tenant_id, "agent_id": key.agent_id, "binding_id": binding_id,
        "channel": key.channel, "session_id": session_id, "user_id": key.user_id, "message_id": message_id,
        "text": text, "reply_to": dict(reply_to or {}), "received_at": received_at, "turn_id": turn_id,
        **dict(extra or {}),
    }
    try:
        svc.sqs.send_message(
            QueueUrl=svc.settings.turn_queue_url,
            MessageBody=json.dumps(body, ensure_ascii=False),
            MessageGroupId=session_key_hash(key),
            MessageDeduplicationId=hashlib.sha256(message_id.encode()).hexdigest(),
        )
    except (ClientError, BotoCoreError) as exc:
        raise Unavailable("could not enqueue the turn") from exc
