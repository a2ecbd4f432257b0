"""Tenant event endpoints: PUT (create or replace), GET one (never the secret), list, DELETE."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.api.body import parse_model
from chalicelib.api.pagination import PageRequest
from chalicelib.api.views import EventEndpointPage, EventEndpointView
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.event import EventEndpoint, EventType
from chalicelib.domain.ids import is_valid_id, now_iso
from chalicelib.providers.network import check_url
from chalicelib.runtime.events import ENDPOINTS
from chalicelib.runtime.services import Services


class EventEndpointPut(BaseModel):
    """Body of PUT /v1/event-endpoints/{endpoint_id}."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(min_length=1, max_length=2048)
    events: list[EventType] = Field(min_length=1)
    secret: str = Field(min_length=16, max_length=512, repr=False,
                        description="HMAC-SHA256 key of X-Ruche-Signature (write-only)")

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[EventType]) -> list[EventType]:
        return sorted(set(events), key=list(EventType).index)


def parse_put(svc: Services, document: object) -> EventEndpointPut:
    """The body, validated: its shape and the network guard's verdict on `url`, every problem at once."""
    shape: list[tuple[str, str]] = []
    body: EventEndpointPut | None = None
    try:
        body = parse_model(EventEndpointPut, document)
    except InvalidInput as exc:
        shape = [(error["path"], error["message"]) for error in exc.details.get("errors", [])]
    url = document.get("url") if isinstance(document, dict) else None
    if isinstance(url, str) and not any(path == "url" for path, _ in shape):
        try:
            check_url(url, svc.platform_config.network.allow_private, at_publish=True, path="url")
        except InvalidInput as exc:
            shape += [(error["path"], error["message"]) for error in exc.details.get("errors", [])]
    if shape or body is None:
        raise InvalidInput.many(shape)
    return body


def put(svc: Services, tenant_id: str, endpoint_id: str, body: EventEndpointPut) -> EventEndpointView:
    """Create or replace the endpoint; its public view. Raises InvalidInput (bad id, URL refused by
    the network guard at path `url`)."""
    if not is_valid_id(endpoint_id):
        raise InvalidInput.at("endpoint_id", "letters, digits, _ . - (at most 64)")
    check_url(body.url, svc.platform_config.network.allow_private, at_publish=True, path="url")
    store = svc.event_endpoints
    existing = store.get(tenant_id, endpoint_id)
    stamp = now_iso()
    endpoint = EventEndpoint(endpoint_id=endpoint_id, tenant_id=tenant_id, url=body.url, events=body.events,
                             secret=body.secret, created_at=existing.created_at if existing else stamp,
                             updated_at=stamp)
    store.put(endpoint)
    ENDPOINTS.forget(tenant_id)  # this container emits to the new endpoint at once
    return EventEndpointView.of(endpoint)


def get(svc: Services, tenant_id: str, endpoint_id: str) -> EventEndpointView:
    """The endpoint without its secret, with `last_failure`. Raises NotFound."""
    endpoint = svc.event_endpoints.get(tenant_id, endpoint_id)
    if endpoint is None:
        raise NotFound("no such event endpoint", endpoint_id=endpoint_id)
    return EventEndpointView.of(endpoint)


def list_endpoints(svc: Services, tenant_id: str, page: PageRequest) -> EventEndpointPage:
    return EventEndpointPage.of(svc.event_endpoints.list(tenant_id), page)


def delete(svc: Services, tenant_id: str, endpoint_id: str) -> None:
    """Remove the endpoint; its queued events are dropped. Raises NotFound."""
    if not svc.event_endpoints.delete(tenant_id, endpoint_id):
        raise NotFound("no such event endpoint", endpoint_id=endpoint_id)
    ENDPOINTS.forget(tenant_id)
