"""The route table: every HTTP route with its method, its authentication, its body and its answer.

This is the one place a route's authentication is declared. app.py registers each handler through
http.Router, which looks the route up here and runs its `auth` before the handler; the OpenAPI
document (api/openapi.py) is generated from the same table. A route missing from the table cannot
be registered, and tests/api/test_route_auth.py walks every registered route and checks that it
enforces what it declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from chalicelib.api.admin import SecretPut, TenantCreate
from chalicelib.api.channels import BindingCreate, BindingUpdate
from chalicelib.api.event_endpoints import EventEndpointPut
from chalicelib.api.models import AgentVersion, InterlocutorPatch, RollbackRequest, TurnReply, TurnRequest
from chalicelib.api.usage import InsightsAnswer, UsageAnswer
from chalicelib.api.views import (
    AgentPage,
    BindingCreated,
    BindingPage,
    BindingView,
    EventEndpointPage,
    EventEndpointView,
    InterlocutorView,
    KeyCreated,
    KeyPage,
    MessagePage,
    ReplayAnswer,
    ResolvedConfigView,
    SessionPage,
    SessionStatusView,
    TenantCreated,
    TurnPage,
    VersionPage,
)
from chalicelib.domain.bundle import AgentBundle

# none: anyone (the page and document routes).
# tenant: a tenant API key (Bearer); the handler reads its tenant, counted against the rate limit.
# admin: the platform admin key (Bearer); it names no tenant.
# channel: the credential of the binding named in the path: a provider's signature, the WhatsApp
#   verify token, a webchat binding token (and visitor token). Checked by the gateway
#   (runtime/ingest.py), which alone knows each channel's scheme; the router adds nothing.

Auth = Literal["none", "tenant", "admin", "channel"]


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
    content_types: tuple[str, ...] | None = None  # of a body that is not JSON or YAML (a webhook's)


_AGENT = "/v1/agents/{agent_id}"
ROUTES: tuple[Route, ...] = (
    Route("/health", "GET", "Liveness", auth="none"),
    Route("/v1/openapi.json", "GET", "This document", auth="none"),
    Route("/v1/webhooks/{channel}/{binding_id}", "POST", "Inbound channel webhook (provider-signed)",
          auth="channel", status=200, content_types=("application/x-www-form-urlencoded", "application/json")),
    Route("/v1/webhooks/{channel}/{binding_id}", "GET", "WhatsApp Cloud verification handshake", auth="channel",
          query=("hub.mode", "hub.verify_token", "hub.challenge")),
    Route("/v1/webhooks/webchat/{binding_id}/messages", "GET", "A webchat visitor's transcript", auth="channel",
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
        reply=TenantCreated,
    ),
    Route("/v1/tenants/{tenant_id}", "DELETE", "Erase a tenant and all its data", auth="admin", status=204),
    Route("/v1/dead-letters/replay", "POST", "Send dead-lettered turn records back to the turn queue",
          auth="admin", reply=ReplayAnswer),
    Route("/v1/config", "PUT", "Replace the tenant config layer", free_body="a tenant config layer"),
    Route("/v1/config", "GET", "The tenant config layer"),
    Route("/v1/keys", "POST", "A new API key for the caller's tenant (shown once)", status=201,
          reply=KeyCreated),
    Route("/v1/keys", "GET", "The tenant's key ids and creation dates", query=("limit", "cursor"),
          reply=KeyPage),
    Route("/v1/keys/{key_id}", "DELETE", "Revoke a key at once", status=204),
    Route("/v1/secrets/{name}", "PUT", "Store a tenant secret (write-only)", body=SecretPut, status=204),
    Route("/v1/agents", "GET", "The tenant's agents", query=("limit", "cursor"), reply=AgentPage),
    Route(
        _AGENT,
        "PUT",
        "Publish a whole agent bundle as a new version",
        body=AgentBundle,
        headers=("If-Match",),
        reply=AgentVersion,
    ),
    Route(_AGENT, "GET", "The published bundle (ETag: its version); with format=source, "
          "{agent_id, version, format, text}: the YAML as it was published, comments included",
          query=("version", "format")),
    Route(_AGENT, "DELETE", "Delete the agent", status=204),
    Route(f"{_AGENT}/versions", "GET", "The agent's published versions", query=("limit", "cursor"),
          reply=VersionPage),
    Route(
        f"{_AGENT}/rollback",
        "POST",
        "Republish an older version as the newest",
        body=RollbackRequest,
        headers=("If-Match",),
        reply=AgentVersion,
    ),
    Route(
        f"{_AGENT}/{{kind}}/{{item_id}}",
        "PUT",
        "Create or replace one item; publishes a new version",
        free_body="one rule, scenario, template, tool or field",
        headers=("If-Match",),
        reply=AgentVersion,
    ),
    Route(f"{_AGENT}/{{kind}}/{{item_id}}", "GET", "One item of the latest version"),
    Route(
        f"{_AGENT}/{{kind}}/{{item_id}}",
        "DELETE",
        "Remove one item; publishes a new version",
        headers=("If-Match",),
        reply=AgentVersion,
    ),
    Route(
        f"{_AGENT}/config/resolved",
        "GET",
        "The resolved config of a turn position, with provenance",
        query=("channel", "scenario", "step"),
        reply=ResolvedConfigView,
    ),
    Route("/v1/usage", "GET", "Usage counters per day and agent, with totals (at most 92 days)",
          query=("from", "to", "agent_id"), reply=UsageAnswer),
    Route("/v1/tenants/{tenant_id}/usage", "GET", "A tenant's usage, for the platform admin", auth="admin",
          query=("from", "to", "agent_id"), reply=UsageAnswer),
    Route(f"{_AGENT}/insights", "GET", "Fallback and regeneration rates, violations, rules, scenario funnel, "
          "unmatched turns (at most 92 days)", query=("from", "to"), reply=InsightsAnswer),
    Route(f"{_AGENT}/channels", "POST", "Bind a messaging channel", body=BindingCreate, status=201,
          reply=BindingCreated),
    Route(f"{_AGENT}/channels", "GET", "The agent's channel bindings", query=("limit", "cursor"),
          reply=BindingPage),
    Route(f"{_AGENT}/channels/{{binding_id}}", "PUT", "Update a binding", body=BindingUpdate, reply=BindingView),
    Route(f"{_AGENT}/channels/{{binding_id}}", "GET", "A binding (never its secrets)", reply=BindingView),
    Route(f"{_AGENT}/channels/{{binding_id}}", "DELETE", "Remove a binding", status=204),
    Route(
        f"{_AGENT}/interlocutors/{{interlocutor_id}}",
        "GET",
        "Persistent fields and identities",
        query=("history", "limit", "cursor"),
        reply=InterlocutorView,
    ),
    Route(
        f"{_AGENT}/interlocutors/{{interlocutor_id}}",
        "PATCH",
        "Set persistent fields (validated)",
        body=InterlocutorPatch,
        reply=InterlocutorView,
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
          query=("limit", "cursor", "fallback", "handoff", "scenario"), reply=SessionPage),
    Route(
        f"{_AGENT}/sessions/{{session_id}}/turns",
        "GET",
        "The session's turn records",
        query=("limit", "cursor"),
        reply=TurnPage,
    ),
    Route(
        f"{_AGENT}/sessions/{{session_id}}/messages",
        "GET",
        "The session's transcript",
        query=("after", "limit", "cursor"),
        reply=MessagePage,
    ),
    Route(f"{_AGENT}/sessions/{{session_id}}/resume", "POST", "Hand a session back to the agent after a handoff",
          conflicts=True, reply=SessionStatusView),
    Route(f"{_AGENT}/sessions/{{session_id}}/end", "POST", "End a session; the user's next turn opens a new one",
          reply=SessionStatusView),
    Route("/v1/event-endpoints", "GET", "The tenant's event endpoints", query=("limit", "cursor"),
          reply=EventEndpointPage),
    Route(
        "/v1/event-endpoints/{endpoint_id}",
        "PUT",
        "Register or replace an outbound event endpoint (signed with its secret)",
        body=EventEndpointPut,
        reply=EventEndpointView,
    ),
    Route(
        "/v1/event-endpoints/{endpoint_id}",
        "GET",
        "An event endpoint with its last delivery failure (never its secret)",
        reply=EventEndpointView,
    ),
    Route("/v1/event-endpoints/{endpoint_id}", "DELETE", "Remove an event endpoint", status=204),
)
