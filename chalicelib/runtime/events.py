"""Outbound events: queue one message per subscribed endpoint, then POST it signed, from the worker.

Emit (after a turn commits, or when a reply delivery fails): for each of the tenant's endpoints
subscribed to the event, one EventMessage on the turn queue (runtime/queue_messages.py: body
{"kind": "event", ...}, group `event-<tenant>#<endpoint>`, deduplication id = the event id).
Emitting never fails the turn: it is already committed, so an error is logged and the events are
lost (not retried).

Deliver (worker.handle_record, for an EventMessage): POST {id, type, created_at, tenant_id, data}
with `X-Ruche-Timestamp: <unix s>` and `X-Ruche-Signature: v1=<hex HMAC-SHA256(secret,
f"{timestamp}.{body}")>`. The URL passes the network guard again at call time. On a non-2xx answer
or a network error the failure is recorded on the endpoint (GET shows `last_failure`), the
message's visibility is set to an exponential backoff on its receive count, and DeliveryFailed is
raised so SQS redelivers it (after the queue's maxReceiveCount it goes to the dead-letter queue).

Event data never holds message or reply text, field values or PII: ids, rule ids, counts, the
fallback template id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import RucheError
from chalicelib.domain.event import DeliveryFailure, Event, EventEndpoint, EventType
from chalicelib.domain.ids import new_id, now_iso
from chalicelib.domain.turn import TurnRecord
from chalicelib.providers.llm import ProviderError
from chalicelib.providers.network import check_url
from chalicelib.providers.transport import HttpRequest, Send, guarded_send
from chalicelib.runtime.log import logger
from chalicelib.runtime.queue_messages import EventMessage, send_request
from chalicelib.runtime.services import Services
from chalicelib.stores.ports import EventEndpointStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

EVENT_TIMEOUT_S = 5.0
BACKOFF_BASE_S = 30  # first retry after 30 s, then 60, 120, ... (SQS caps visibility at 12 h)
BACKOFF_MAX_S = 900
# The tenant's endpoint list is cached per container: a warm turn emits without a read. An endpoint
# registered on another container gets events within this many seconds; on this one at once.
ENDPOINT_CACHE_S = 5.0


class DeliveryFailed(Exception):
    """The endpoint did not take the event; SQS will redeliver the message."""


class _EndpointCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, tuple[list[EventEndpoint], float]] = {}
        self._lock = threading.Lock()

    def get(self, tenant_id: str) -> list[EventEndpoint] | None:
        with self._lock:
            entry = self._entries.get(tenant_id)
        return entry[0] if entry is not None and entry[1] > self.clock() else None

    def put(self, tenant_id: str, endpoints: list[EventEndpoint]) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()  # bounded: a container serving that many tenants starts over
            self._entries[tenant_id] = (endpoints, self.clock() + ENDPOINT_CACHE_S)

    def forget(self, tenant_id: str) -> None:
        with self._lock:
            self._entries.pop(tenant_id, None)


ENDPOINTS = _EndpointCache()


# --- emit -------------------------------------------------------------------------------------------

def emit_turn_events(svc: Services, record: TurnRecord) -> None:
    """Queue turn_completed, and fallback_used / handoff when the turn says so. Never raises."""
    outcome = record.outcome
    base = {"agent_id": record.agent_id, "agent_version": record.agent_version,
            "session_id": record.session_id, "turn_id": record.turn_id,
            "interlocutor_id": record.interlocutor_id, "channel": record.channel,
            "turn_number": record.turn_number}
    scenario = outcome.scenario.model_dump(mode="json") if outcome.scenario else None
    events: list[tuple[EventType, dict[str, Any]]] = [(EventType.TURN_COMPLETED, {
        **base, "rules": list(outcome.rules), "scenario": scenario,
        "regeneration_attempts": outcome.regeneration_attempts, "fallback_used": outcome.fallback_used,
        "llm_calls": outcome.llm_calls, "handoff": outcome.handoff,
    })]
    if outcome.fallback_used:
        violated = sorted({v.rule_id for attempt in record.attempts for v in attempt.violations})
        events.append((EventType.FALLBACK_USED, {
            **base, "fallback_template_id": record.fallback_template_id, "violated_rules": violated,
            "regeneration_attempts": outcome.regeneration_attempts,
        }))
    if outcome.handoff:
        events.append((EventType.HANDOFF, {**base, "rules": list(outcome.rules), "scenario": scenario}))
    _emit(svc, record.tenant_id, events)


def emit_event(svc: Services, tenant_id: str, kind: EventType | str, data: Mapping[str, Any]) -> None:
    """Queue one event for the tenant's endpoints subscribed to it. `data` holds ids and counts only.
    Never raises (an unknown kind is logged and dropped)."""
    try:
        event_type = EventType(kind)
    except ValueError:
        logger.warning("unknown event type: not emitted", extra={"event_type": str(kind)})
        return
    _emit(svc, tenant_id, [(event_type, dict(data))])


def _emit(svc: Services, tenant_id: str, events: list[tuple[EventType, dict[str, Any]]]) -> None:
    try:
        endpoints = subscribed_endpoints(svc, tenant_id)
        queued = 0
        for endpoint in endpoints:
            for kind, data in events:
                if endpoint.subscribes_to(kind):
                    _enqueue(svc, EventMessage(id=new_id("evt"), type=kind, created_at=now_iso(),
                                               tenant_id=tenant_id, endpoint_id=endpoint.endpoint_id, data=data))
                    queued += 1
    except (RucheError, ClientError, BotoCoreError) as exc:
        logger.warning("outbound events not queued", extra={"tenant_id": tenant_id, "error": type(exc).__name__})
        return
    if queued:
        logger.info("outbound events queued", extra={"tenant_id": tenant_id, "count": queued})


def subscribed_endpoints(svc: Services, tenant_id: str) -> list[EventEndpoint]:
    """The tenant's endpoints (no secrets), from the container cache or one Query."""
    cached = ENDPOINTS.get(tenant_id)
    if cached is None:
        cached = svc.event_endpoints.list(tenant_id)
        ENDPOINTS.put(tenant_id, cached)
    return cached


def _enqueue(svc: Services, event: EventMessage) -> None:
    queue_url = svc.settings.turn_queue_url
    if not queue_url:
        logger.warning("no turn queue configured: event dropped", extra={"event_type": event.type.value})
        return
    svc.sqs.send_message(**send_request(queue_url, event))


# --- deliver ----------------------------------------------------------------------------------------

def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Ruche-Signature value: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def deliver_event(svc: Services, record: SQSRecord, event: EventMessage, send: Send | None = None) -> None:
    """POST the record's event (parsed by the worker) to its endpoint. Raises DeliveryFailed (after
    recording it) so SQS retries; returns quietly when the endpoint was deleted or no longer subscribes."""
    store = svc.event_endpoints
    endpoint = store.get(event.tenant_id, event.endpoint_id, with_secret=True)
    if endpoint is None or not endpoint.subscribes_to(event.type):
        logger.info("event endpoint gone or unsubscribed: event dropped", extra={"event_id": event.id})
        return
    attempts = _receive_count(record)
    body = json.dumps(event.body(), separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "ruche-events/1", "X-Ruche-Event-Id": event.id,
               "X-Ruche-Timestamp": str(timestamp), "X-Ruche-Signature": sign(endpoint.secret, timestamp, body)}
    try:
        allow_private = svc.platform_config.network.allow_private
        check_url(endpoint.url, allow_private)
        transport = send or guarded_send(allow_private)  # judges the address actually connected to
        status = transport(HttpRequest("POST", endpoint.url, headers, body, EVENT_TIMEOUT_S)).status
    except (ProviderError, TimeoutError, ConnectionError) as exc:  # BlockedDestination is a ProviderError
        _failed(svc, store, record, event, DeliveryFailure(at=now_iso(), error=_describe(exc), attempts=attempts,
                                                           event_id=event.id))
    if not 200 <= status < 300:
        _failed(svc, store, record, event, DeliveryFailure(at=now_iso(), status=status, attempts=attempts,
                                                           event_id=event.id))
    store.record_delivery(event.tenant_id, event.endpoint_id, now_iso())
    logger.info("event delivered", extra={"event_id": event.id, "event_type": event.type.value})


def backoff_s(attempts: int) -> int:
    """Seconds before the next try after `attempts` failed ones: 30, 60, 120, ... at most 900."""
    return int(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


def _failed(svc: Services, store: EventEndpointStore, record: SQSRecord, event: Event,
            failure: DeliveryFailure) -> NoReturn:
    store.record_failure(event.tenant_id, event.endpoint_id, failure)
    delay = backoff_s(failure.attempts)
    if svc.settings.turn_queue_url and record.receipt_handle:
        svc.sqs.change_message_visibility(QueueUrl=svc.settings.turn_queue_url,
                                          ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay)
    logger.warning("event delivery failed", extra={"event_id": event.id, "status": failure.status,
                                                   "error": failure.error, "attempts": failure.attempts,
                                                   "retry_in_s": delay})
    raise DeliveryFailed(f"event {event.id} not delivered (attempt {failure.attempts})")


def _receive_count(record: SQSRecord) -> int:
    raw = record.raw_event.get("attributes", {}).get("ApproximateReceiveCount", "1")
    return int(raw) if str(raw).isdigit() and int(raw) > 0 else 1


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
