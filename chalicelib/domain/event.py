"""Outbound events: what a tenant's event endpoint subscribes to, and what an event carries.

Event data never holds message or reply text, field values or other PII: ids, rule ids, counts,
the fallback template id (API.md, "Channels"; runtime/events.py builds it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from chalicelib.domain.base import Model


class EventType(StrEnum):
    TURN_COMPLETED = "turn_completed"
    FALLBACK_USED = "fallback_used"
    HANDOFF = "handoff"
    DELIVERY_FAILED = "delivery_failed"
    QUOTA_EXCEEDED = "quota_exceeded"  # once per quota and UTC month


class DeliveryFailure(Model):
    """The last failed delivery to an endpoint: when, what answered (a status or an error), which try."""

    at: str
    status: int | None = None
    error: str = ""
    attempts: int = 1
    event_id: str = ""


class EventEndpoint(Model):
    endpoint_id: str
    tenant_id: str
    url: str
    events: list[EventType]
    secret: str = Field(default="", repr=False)  # HMAC key; empty when read without unsealing
    created_at: str = ""
    updated_at: str = ""
    last_failure: DeliveryFailure | None = None
    last_delivered_at: str | None = None

    def subscribes_to(self, kind: EventType) -> bool:
        return kind in self.events


class Event(Model):
    """One event for one endpoint: the body POSTed is {id, type, created_at, tenant_id, data}."""

    id: str
    type: EventType
    created_at: str
    tenant_id: str
    endpoint_id: str
    data: dict[str, Any] = Field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type.value, "created_at": self.created_at,
                "tenant_id": self.tenant_id, "data": self.data}
