"""The OpenAPI 3.1 document of the HTTP API, generated from ROUTES (the one route table).

app.py registers exactly these routes; a test compares ROUTES with `app.routes`, so the document
cannot drift from the app. `python -m chalicelib.api.openapi [path]` writes docs/openapi.json.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from chalicelib.api.admin import SecretPut, TenantCreate
from chalicelib.api.body import ACCEPTED_CONTENT_TYPES
from chalicelib.api.channels import BindingCreate, BindingUpdate
from chalicelib.api.event_endpoints import EventEndpointPut
from chalicelib.api.usage import InsightsAnswer, UsageAnswer
from chalicelib.domain.bundle import AgentBundle
from chalicelib.runtime.agents import ITEM_KINDS, RollbackRequest
from chalicelib.runtime.interlocutors import InterlocutorPatch
from chalicelib.runtime.turns import TurnReply, TurnRequest

Auth = Literal["none", "tenant", "admin"]


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    method: str
    summary: str
    auth: Auth = "tenant"
    body: type[BaseModel] | None = None
    status: int = 200
    reply: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    free_body: str | None = None  # a body that is not one model (a config layer, one agent item)
    conflicts: bool = False  # answers 409 (besides a stale If-Match)


_AGENT = "/v1/agents/{agent_id}"
ROUTES: tuple[Route, ...] = (
    Route("/health", "GET", "Liveness", auth="none"),
    Route("/v1/openapi.json", "GET", "This document", auth="none"),
    Route("/v1/webhooks/{channel}/{binding_id}", "POST", "Inbound channel webhook (provider-signed)", auth="none",
          status=200),
    Route("/v1/webhooks/{channel}/{binding_id}", "GET", "WhatsApp Cloud verification handshake", auth="none",
          query=("hub.mode", "hub.verify_token", "hub.challenge")),
    Route("/v1/webhooks/webchat/{binding_id}/messages", "GET", "A webchat visitor's transcript", auth="none",
          query=("after",), headers=("X-Visitor-Token",)),
    Route("/v1/webhooks/webchat/{binding_id}/page", "GET", "A page for trying the agent in a browser", auth="none"),
    Route("/v1/console", "GET", "The operator console page (it asks for a tenant key)", auth="none"),
    Route("/v1/console/{asset}", "GET", "A script, style sheet or image of the console page", auth="none"),
    Route(
        "/v1/tenants",
        "POST",
        "Create a tenant and its first API key (shown once)",
        auth="admin",
        body=TenantCreate,
        status=201,
    ),
    Route("/v1/tenants/{tenant_id}", "DELETE", "Erase a tenant and all its data", auth="admin", status=204),
    Route("/v1/dead-letters/replay", "POST", "Send dead-lettered turn records back to the turn queue",
          auth="admin"),
    Route("/v1/config", "PUT", "Replace the tenant config layer", free_body="a tenant config layer"),
    Route("/v1/config", "GET", "The tenant config layer"),
    Route("/v1/keys", "POST", "A new API key for the caller's tenant (shown once)", status=201),
    Route("/v1/keys", "GET", "The tenant's key ids and creation dates", query=("limit", "cursor")),
    Route("/v1/keys/{key_id}", "DELETE", "Revoke a key at once", status=204),
    Route("/v1/secrets/{name}", "PUT", "Store a tenant secret (write-only)", body=SecretPut, status=204),
    Route("/v1/agents", "GET", "The tenant's agents", query=("limit", "cursor")),
    Route(
        _AGENT,
        "PUT",
        "Publish a whole agent bundle as a new version",
        body=AgentBundle,
        headers=("If-Match",),
    ),
    Route(_AGENT, "GET", "The published bundle (ETag: its version); with format=source, "
          "{agent_id, version, format, text}: the YAML as it was published, comments included",
          query=("version", "format")),
    Route(_AGENT, "DELETE", "Delete the agent", status=204),
    Route(f"{_AGENT}/versions", "GET", "The agent's published versions", query=("limit", "cursor")),
    Route(
        f"{_AGENT}/rollback",
        "POST",
        "Republish an older version as the newest",
        body=RollbackRequest,
        headers=("If-Match",),
    ),
    Route(
        f"{_AGENT}/{{kind}}/{{item_id}}",
        "PUT",
        "Create or replace one item; publishes a new version",
        free_body="one rule, scenario, template, tool or field",
        headers=("If-Match",),
    ),
    Route(f"{_AGENT}/{{kind}}/{{item_id}}", "GET", "One item of the latest version"),
    Route(
        f"{_AGENT}/{{kind}}/{{item_id}}",
        "DELETE",
        "Remove one item; publishes a new version",
        headers=("If-Match",),
    ),
    Route(
        f"{_AGENT}/config/resolved",
        "GET",
        "The resolved config of a turn position, with provenance",
        query=("channel", "scenario", "step"),
    ),
    Route("/v1/usage", "GET", "Usage counters per day and agent, with totals (at most 92 days)",
          query=("from", "to", "agent_id"), reply=UsageAnswer),
    Route("/v1/tenants/{tenant_id}/usage", "GET", "A tenant's usage, for the platform admin", auth="admin",
          query=("from", "to", "agent_id"), reply=UsageAnswer),
    Route(f"{_AGENT}/insights", "GET", "Fallback and regeneration rates, violations, rules, scenario funnel, "
          "unmatched turns (at most 92 days)", query=("from", "to"), reply=InsightsAnswer),
    Route(f"{_AGENT}/channels", "POST", "Bind a messaging channel", body=BindingCreate, status=201),
    Route(f"{_AGENT}/channels", "GET", "The agent's channel bindings", query=("limit", "cursor")),
    Route(f"{_AGENT}/channels/{{binding_id}}", "PUT", "Update a binding", body=BindingUpdate),
    Route(f"{_AGENT}/channels/{{binding_id}}", "GET", "A binding (never its secrets)"),
    Route(f"{_AGENT}/channels/{{binding_id}}", "DELETE", "Remove a binding", status=204),
    Route(
        f"{_AGENT}/interlocutors/{{interlocutor_id}}",
        "GET",
        "Persistent fields and identities",
        query=("history", "limit", "cursor"),
    ),
    Route(
        f"{_AGENT}/interlocutors/{{interlocutor_id}}",
        "PATCH",
        "Set persistent fields (validated)",
        body=InterlocutorPatch,
    ),
    Route(f"{_AGENT}/interlocutors/{{interlocutor_id}}", "DELETE", "Erase the interlocutor", status=204),
    Route(
        f"{_AGENT}/turns",
        "POST",
        "Run a turn",
        body=TurnRequest,
        reply=TurnReply,
        query=("async",),
        headers=("Idempotency-Key",),
        conflicts=True,
    ),
    Route(f"{_AGENT}/sessions", "GET", "The agent's sessions, newest first (filter: fallback, handoff, scenario)",
          query=("limit", "cursor", "fallback", "handoff", "scenario")),
    Route(
        f"{_AGENT}/sessions/{{session_id}}/turns",
        "GET",
        "The session's turn records",
        query=("limit", "cursor"),
    ),
    Route(
        f"{_AGENT}/sessions/{{session_id}}/messages",
        "GET",
        "The session's transcript",
        query=("after", "limit", "cursor"),
    ),
    Route(f"{_AGENT}/sessions/{{session_id}}/resume", "POST", "Hand a session back to the agent after a handoff",
          conflicts=True),
    Route(f"{_AGENT}/sessions/{{session_id}}/end", "POST", "End a session; the user's next turn opens a new one"),
    Route("/v1/event-endpoints", "GET", "The tenant's event endpoints", query=("limit", "cursor")),
    Route(
        "/v1/event-endpoints/{endpoint_id}",
        "PUT",
        "Register or replace an outbound event endpoint (signed with its secret)",
        body=EventEndpointPut,
    ),
    Route(
        "/v1/event-endpoints/{endpoint_id}",
        "GET",
        "An event endpoint with its last delivery failure (never its secret)",
    ),
    Route("/v1/event-endpoints/{endpoint_id}", "DELETE", "Remove an event endpoint", status=204),
)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "properties": {
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                            },
                        }
                    },
                },
            },
        }
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ROUTES."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ruche",
            "version": "1",
            "description": "Multi-tenant runtime for conversational agents",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "tenantKey": {"type": "http", "scheme": "bearer", "description": "a tenant API key"},
                "adminKey": {"type": "http", "scheme": "bearer", "description": "the platform admin key"},
            },
        },
    }


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    params = [
        {"name": name[1:-1], "in": "path", "required": True, "schema": _path_schema(name)}
        for name in route.path.split("/")
        if name.startswith("{")
    ]
    params += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in route.query
    ]
    params += [
        {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        for name in route.headers
    ]
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": _operation_id(route),
        "parameters": params,
        "responses": _responses(route, schemas),
    }
    if route.auth != "none":
        operation["security"] = [{"tenantKey" if route.auth == "tenant" else "adminKey": []}]
    body_schema = (
        _ref(route.body, schemas)
        if route.body
        else ({"type": "object", "description": route.free_body} if route.free_body else None)
    )
    if body_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": body_schema} for media in ACCEPTED_CONTENT_TYPES},
        }
    return operation


def _path_schema(segment: str) -> dict[str, Any]:
    if segment == "{kind}":
        return {"type": "string", "enum": sorted(ITEM_KINDS)}
    return {"type": "string"}


def _responses(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    error = {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    success: dict[str, Any] = {"description": "success"}
    if route.status != 204:
        schema = _ref(route.reply, schemas) if route.reply else {"type": "object"}
        success["content"] = {"application/json": {"schema": schema}}
    responses: dict[str, Any] = {str(route.status): success}
    codes = ["400", "413", "422"] if route.body or route.free_body else (["422"] if "from" in route.query else [])
    codes += [] if route.auth == "none" else ["401", "404"]
    codes += ["409"] if "If-Match" in route.headers or route.conflicts else []
    codes += ["429", "500"]
    responses.update({code: error for code in codes})
    return responses


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation_id(route: Route) -> str:
    words = [part.strip("{}") for part in route.path.split("/") if part and part != "v1"]
    return route.method.lower() + "_" + "_".join(words).replace(".", "_").replace("-", "_")


def main(argv: list[str] | None = None) -> int:
    """Write the document (default docs/openapi.json)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "docs/openapi.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
