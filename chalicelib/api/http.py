"""Routes on the Chalice app, and what a handler reads from its request: the caller, the body, the query, the page."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from chalice.app import Chalice, Request, Response
from pydantic import BaseModel

from chalicelib.api.auth import Caller, authenticate, authenticate_admin
from chalicelib.api.body import ACCEPTED_CONTENT_TYPES, YAML_TYPES, parse_model, read_document
from chalicelib.api.channels import base_url
from chalicelib.api.errors import api_call
from chalicelib.api.pagination import PageRequest, page_request
from chalicelib.api.routes import ROUTES, Auth, Route
from chalicelib.domain.errors import InvalidInput
from chalicelib.runtime.limits import RATE_GATE
from chalicelib.runtime.services import services

M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")


class Router:
    """Registers handlers on the Chalice app with the authentication their ROUTES entry declares.

    `@router(path, method)` fails at import for a route missing from the table, so no route can
    exist without a declared auth. The handler runs inside api_call (the error envelope) after its
    auth: a tenant route reads its caller with `tenant()`, an admin route needs nothing more.
    """

    def __init__(self, app: Chalice, routes: Iterable[Route] = ROUTES) -> None:
        self._app = app
        self._routes = {(route.path, route.method): route for route in routes}

    def __call__(self, path: str, method: str) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
        declared = self._routes[(path, method)]
        options: dict[str, object] = {"methods": [method]}
        if declared.content_types is not None:
            options["content_types"] = list(declared.content_types)
        elif declared.body is not None or declared.free_body is not None:
            options["content_types"] = list(ACCEPTED_CONTENT_TYPES)

        def register(view: Callable[P, Response]) -> Callable[P, Response]:
            handler = api_call(self._guard(declared.auth, view))
            self._app.route(path, **options)(handler)
            return handler

        return register

    def _guard(self, auth: Auth, view: Callable[P, Response]) -> Callable[P, Response]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
            request = self._app.current_request
            if request is None:  # Chalice sets it before any view runs
                raise RuntimeError("no current request")
            token = _TENANT.set(_authenticate(auth, request))
            try:
                return view(*args, **kwargs)
            finally:
                _TENANT.reset(token)

        return guarded


def _authenticate(auth: Auth, request: Request) -> str | None:
    """The caller's tenant for a tenant route, None for the others. Raises Unauthorized, RateLimited."""
    if auth == "tenant":
        svc = services()
        caller: Caller = authenticate(request.headers, svc.tenants)
        RATE_GATE.check(svc, caller.tenant_id)
        return caller.tenant_id
    if auth == "admin":
        authenticate_admin(request.headers, services().settings.admin_key)
    return None  # none and channel: nothing for the router to check (see api/routes.py)


# The tenant authenticated for the request being handled. A context variable, not a handler
# argument: Chalice passes a view only its path parameters.
_TENANT: ContextVar[str | None] = ContextVar("ruche_tenant", default=None)


def tenant() -> str:
    """The tenant of the request's API key (never of its body), authenticated by the Router.

    Raises RuntimeError when the route is not declared auth="tenant": a handler bug, not a caller's.
    """
    tenant_id = _TENANT.get()
    if tenant_id is None:
        raise RuntimeError("tenant() in a route that is not declared auth='tenant' in api/routes.py")
    return tenant_id


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
