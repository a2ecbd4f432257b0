"""What a route handler reads from a Chalice request: the caller, the body, the query, the page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from chalice.app import Request
from pydantic import BaseModel

from chalicelib.api.auth import Caller, authenticate, authenticate_admin
from chalicelib.api.body import YAML_TYPES, parse_model, read_document
from chalicelib.api.channels import base_url
from chalicelib.api.pagination import PageRequest, page_request
from chalicelib.domain.errors import InvalidInput
from chalicelib.runtime.limits import RATE_GATE
from chalicelib.runtime.services import services

M = TypeVar("M", bound=BaseModel)


def tenant_of(request: Request) -> str:
    """The tenant of the request's API key (never of its body), counted against its rate limit.

    Raises Unauthorized, RateLimited.
    """
    svc = services()
    caller: Caller = authenticate(request.headers, svc.tenants)
    RATE_GATE.check(svc, caller.tenant_id)
    return caller.tenant_id


def require_admin(request: Request) -> None:
    """Raises Unauthorized unless the request carries the platform admin key."""
    authenticate_admin(request.headers, services().settings.admin_key)


def body_of(request: Request) -> object:
    """The parsed JSON or YAML body. Raises PayloadTooLarge, InvalidJson."""
    return read_document(
        request.raw_body, request.headers.get("content-type"), services().settings.max_body_bytes
    )


def yaml_source_of(request: Request) -> str | None:
    """The raw text of a YAML body (kept as written, comments included); None for any other body."""
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media not in YAML_TYPES or request.raw_body is None:
        return None
    raw = request.raw_body
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def model_of(request: Request, model: type[M]) -> M:
    """The body validated as `model`. Raises PayloadTooLarge, InvalidJson, InvalidInput."""
    return parse_model(model, body_of(request))


def query_of(request: Request, name: str) -> str | None:
    params: Mapping[str, str] = request.query_params or {}
    return params.get(name)


def page_of(request: Request) -> PageRequest:
    return page_request(request.query_params)


def base_url_of(request: Request) -> str:
    return base_url(request.headers, request.context or {})


def parse_flag(value: str | None, name: str) -> bool:
    """A boolean query parameter: absent or "false" is False, "true" is True, anything else 422."""
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise InvalidInput.at(name, "must be true or false")
