"""Ruche's Lambda functions: a table of contents of thin handlers. All logic lives in chalicelib/.

Every route is declared in chalicelib/api/routes.py ROUTES, with its authentication: `@route`
registers a handler only for a declared route and runs its auth first (tenant handlers read the
caller with `tenant()`), so no handler checks a key itself.
"""

from __future__ import annotations

import os
from typing import Any

from chalice.app import Chalice, Response, SQSEvent

from chalicelib.api import admin, channels, console, event_endpoints, local_gateway, sessions, usage
from chalicelib.api.errors import envelope_chalice_errors, json_response
from chalicelib.api.http import (
    Router,
    base_url_of,
    body_of,
    model_of,
    page_of,
    parse_flag,
    query_of,
    tenant,
    yaml_source_of,
)
from chalicelib.api.models import AgentVersion, InterlocutorPatch, QueuedTurn, RollbackRequest, TurnReply, TurnRequest
from chalicelib.api.openapi import document
from chalicelib.api.views import (
    AgentPage,
    AgentSource,
    InterlocutorView,
    ReplayAnswer,
    ResolvedConfigView,
    SessionStatusView,
    VersionPage,
)
from chalicelib.api.webchat_page import render as render_webchat_page
from chalicelib.config.resolver import ConfigPosition
from chalicelib.runtime import agents, dead_letters, idempotency, ingest, interlocutors, lifecycle, turns, worker
from chalicelib.runtime.agents import AgentRef, ItemRef
from chalicelib.runtime.services import services

app = Chalice(app_name="ruche")
app.register_middleware(envelope_chalice_errors, "http")
local_gateway.install()  # chalice local / test client: unknown routes 404, no query values in access logs
route = Router(app)
AGENT = "/v1/agents/{agent_id}"


def _request() -> Any:
    return app.current_request


@route("/health", "GET")
def health() -> Response:
    return json_response({"status": "ok"})


@route("/v1/openapi.json", "GET")
def openapi() -> Response:
    return json_response(document())


# --- tenants, config, keys, secrets -------------------------------------------------------------
@route("/v1/tenants", "POST")
def create_tenant() -> Response:
    return json_response(admin.create_tenant(services(), model_of(_request(), admin.TenantCreate)), 201)


@route("/v1/tenants/{tenant_id}", "DELETE")
def delete_tenant(tenant_id: str) -> Response:
    admin.delete_tenant(services(), tenant_id)
    return json_response(None, 204)


@route("/v1/dead-letters/replay", "POST")
def replay_dead_letters() -> Response:
    return json_response(ReplayAnswer.of(dead_letters.replay_dead_letters(services())))


@route("/v1/config", "PUT")
def put_config() -> Response:
    tenant_id = tenant()
    return json_response(admin.put_config(services(), tenant_id, body_of(_request())))


@route("/v1/config", "GET")
def get_config() -> Response:
    return json_response(admin.get_config(services(), tenant()))


@route("/v1/keys", "POST")
def create_key() -> Response:
    return json_response(admin.create_key(services(), tenant()), 201)


@route("/v1/keys", "GET")
def list_keys() -> Response:
    return json_response(admin.list_keys(services(), tenant(), page_of(_request())))


@route("/v1/keys/{key_id}", "DELETE")
def revoke_key(key_id: str) -> Response:
    admin.revoke_key(services(), tenant(), key_id)
    return json_response(None, 204)


@route("/v1/secrets/{name}", "PUT")
def put_secret(name: str) -> Response:
    tenant_id = tenant()
    admin.put_secret(services(), tenant_id, name, model_of(_request(), admin.SecretPut))
    return json_response(None, 204)


# --- agents ---------------------------------------------------------------------------------------
@route("/v1/agents", "GET")
def list_agents() -> Response:
    return json_response(AgentPage.of(agents.list_agents(services(), tenant()), page_of(_request())))


@route(AGENT, "PUT")
def put_agent(agent_id: str) -> Response:
    agent = AgentRef(tenant(), agent_id)
    version = agents.publish(
        services(), agent, body_of(_request()), if_match=_request().headers.get("if-match"),
        source=yaml_source_of(_request()),
    )
    return _agent_version(agent_id, version)


@route(AGENT, "GET")
def get_agent(agent_id: str) -> Response:
    tenant_id = tenant()
    published = agents.load(
        services(), tenant_id, agent_id, agents.parse_version(query_of(_request(), "version"))
    )
    answer = (AgentSource.of(published, agents.source_text(published)) if query_of(_request(), "format") == "source"
              else published.bundle.to_document())
    return json_response(answer, headers={"ETag": f'"{published.version}"'})


@route(AGENT, "DELETE")
def delete_agent(agent_id: str) -> Response:
    agents.delete(services(), tenant(), agent_id)
    return json_response(None, 204)


@route(f"{AGENT}/versions", "GET")
def agent_versions(agent_id: str) -> Response:
    return json_response(VersionPage.of(agents.versions(services(), tenant(), agent_id), page_of(_request())))


@route(f"{AGENT}/rollback", "POST")
def rollback_agent(agent_id: str) -> Response:
    tenant_id = tenant()
    body = model_of(_request(), RollbackRequest)
    version = agents.rollback(
        services(), tenant_id, agent_id, body.version, if_match=_request().headers.get("if-match")
    )
    return _agent_version(agent_id, version)


@route(AGENT + "/{kind}/{item_id}", "PUT")
def put_agent_item(agent_id: str, kind: str, item_id: str) -> Response:
    agent, body = AgentRef(tenant(), agent_id), body_of(_request())
    if_match = _request().headers.get("if-match")
    version = agents.put_item(services(), agent, ItemRef(kind, item_id), item=body, if_match=if_match)
    return _agent_version(agent_id, version)


@route(AGENT + "/{kind}/{item_id}", "GET")
def get_agent_item(agent_id: str, kind: str, item_id: str) -> Response:
    return json_response(agents.get_item(services(), tenant(), agent_id, kind, item_id))


@route(AGENT + "/{kind}/{item_id}", "DELETE")
def delete_agent_item(agent_id: str, kind: str, item_id: str) -> Response:
    agent = AgentRef(tenant(), agent_id)
    version = agents.delete_item(
        services(), agent, ItemRef(kind, item_id), if_match=_request().headers.get("if-match")
    )
    return _agent_version(agent_id, version)


@route(f"{AGENT}/config/resolved", "GET")
def resolved_config(agent_id: str) -> Response:
    request = _request()
    position = ConfigPosition(  # an empty query value is no position, as an absent one
        channel=query_of(request, "channel") or None,
        scenario_id=query_of(request, "scenario") or None,
        step_id=query_of(request, "step") or None,
    )
    resolved = agents.resolved_config(services(), AgentRef(tenant(), agent_id), position)
    return json_response(ResolvedConfigView.of(resolved))


def _agent_version(agent_id: str, version: int) -> Response:
    return json_response(AgentVersion(agent_id=agent_id, version=version), headers={"ETag": f'"{version}"'})


# --- usage and insights ----------------------------------------------------------------------------
@route("/v1/usage", "GET")
def tenant_usage() -> Response:
    request = _request()
    return json_response(usage.tenant_usage(services(), tenant(), query_of(request, "from"),
                                            query_of(request, "to"), query_of(request, "agent_id")))


@route("/v1/tenants/{tenant_id}/usage", "GET")
def admin_usage(tenant_id: str) -> Response:
    request = _request()
    return json_response(usage.admin_usage(services(), tenant_id, query_of(request, "from"),
                                           query_of(request, "to"), query_of(request, "agent_id")))


@route(f"{AGENT}/insights", "GET")
def agent_insights(agent_id: str) -> Response:
    request = _request()
    return json_response(usage.agent_insights(services(), tenant(), agent_id, query_of(request, "from"),
                                              query_of(request, "to")))


# --- channel bindings -----------------------------------------------------------------------------
@route(f"{AGENT}/channels", "POST")
def create_binding(agent_id: str) -> Response:
    request = _request()
    tenant_id = tenant()
    body = model_of(request, channels.BindingCreate)
    return json_response(channels.create(services(), tenant_id, agent_id, body, base_url_of(request)), 201)


@route(f"{AGENT}/channels", "GET")
def list_bindings(agent_id: str) -> Response:
    request = _request()
    return json_response(
        channels.list_bindings(services(), tenant(), agent_id, base=base_url_of(request), page=page_of(request))
    )


@route(AGENT + "/channels/{binding_id}", "PUT")
def update_binding(agent_id: str, binding_id: str) -> Response:
    request = _request()
    binding = channels.BindingRef(tenant(), agent_id, binding_id)
    body = model_of(request, channels.BindingUpdate)
    return json_response(channels.update(services(), binding, body, base=base_url_of(request)))


@route(AGENT + "/channels/{binding_id}", "GET")
def get_binding(agent_id: str, binding_id: str) -> Response:
    request = _request()
    return json_response(
        channels.get(services(), channels.BindingRef(tenant(), agent_id, binding_id), base_url_of(request))
    )


@route(AGENT + "/channels/{binding_id}", "DELETE")
def delete_binding(agent_id: str, binding_id: str) -> Response:
    channels.delete(services(), channels.BindingRef(tenant(), agent_id, binding_id))
    return json_response(None, 204)


# --- interlocutors --------------------------------------------------------------------------------
@route(AGENT + "/interlocutors/{interlocutor_id}", "GET")
def get_interlocutor(agent_id: str, interlocutor_id: str) -> Response:
    request = _request()
    history = (query_of(request, "history") or "").lower() in {"true", "1", "yes"}
    page = page_of(request)
    read = interlocutors.get(services(), tenant(), agent_id, interlocutor_id, history=history)
    return json_response(InterlocutorView.of(read, page))


@route(AGENT + "/interlocutors/{interlocutor_id}", "PATCH")
def patch_interlocutor(agent_id: str, interlocutor_id: str) -> Response:
    tenant_id = tenant()
    body = model_of(_request(), InterlocutorPatch)
    return json_response(
        InterlocutorView.of(interlocutors.patch(services(), tenant_id, agent_id, interlocutor_id, body.fields))
    )


@route(AGENT + "/interlocutors/{interlocutor_id}", "DELETE")
def erase_interlocutor(agent_id: str, interlocutor_id: str) -> Response:
    interlocutors.erase(services(), tenant(), agent_id, interlocutor_id)
    return json_response(None, 204)


# --- turns and sessions ---------------------------------------------------------------------------
@route(f"{AGENT}/turns", "POST")
def post_turn(agent_id: str) -> Response:
    request = _request()
    tenant_id = tenant()
    turn = model_of(request, TurnRequest).to_input()
    if parse_flag(query_of(request, "async"), "async"):
        queued = turns.enqueue(services(), tenant_id, agent_id, turn)
        return json_response(QueuedTurn.of(queued), 202)
    result = idempotency.run_sync_once(services(), tenant_id, agent_id, turn, request.headers.get("idempotency-key"))
    return json_response(TurnReply.of(result))


@route(f"{AGENT}/sessions", "GET")
def list_sessions(agent_id: str) -> Response:
    request = _request()
    where = sessions.session_filter(request.query_params)
    return json_response(sessions.list_sessions(services(), tenant(), agent_id, page_of(request), where))


@route(AGENT + "/sessions/{session_id}/turns", "GET")
def session_turns(agent_id: str, session_id: str) -> Response:
    request = _request()
    return json_response(
        sessions.turns(services(), sessions.SessionRef(tenant(), agent_id, session_id), page_of(request))
    )


@route(AGENT + "/sessions/{session_id}/messages", "GET")
def session_messages(agent_id: str, session_id: str) -> Response:
    request = _request()
    after = query_of(request, "after")
    session = sessions.SessionRef(tenant(), agent_id, session_id)
    return json_response(sessions.messages(services(), session, after, page_of(request)))


@route(AGENT + "/sessions/{session_id}/resume", "POST")
def resume_session(agent_id: str, session_id: str) -> Response:
    return json_response(SessionStatusView.of(lifecycle.resume(services(), tenant(), agent_id, session_id)))


@route(AGENT + "/sessions/{session_id}/end", "POST")
def end_session(agent_id: str, session_id: str) -> Response:
    return json_response(SessionStatusView.of(lifecycle.end(services(), tenant(), agent_id, session_id)))


# --- outbound event endpoints ---------------------------------------------------------------------
EVENT_ENDPOINT = "/v1/event-endpoints/{endpoint_id}"


@route("/v1/event-endpoints", "GET")
def list_event_endpoints() -> Response:
    return json_response(event_endpoints.list_endpoints(services(), tenant(), page_of(_request())))


@route(EVENT_ENDPOINT, "PUT")
def put_event_endpoint(endpoint_id: str) -> Response:
    tenant_id = tenant()
    body = event_endpoints.parse_put(services(), body_of(_request()))
    return json_response(event_endpoints.put(services(), tenant_id, endpoint_id, body))


@route(EVENT_ENDPOINT, "GET")
def get_event_endpoint(endpoint_id: str) -> Response:
    return json_response(event_endpoints.get(services(), tenant(), endpoint_id))


@route(EVENT_ENDPOINT, "DELETE")
def delete_event_endpoint(endpoint_id: str) -> Response:
    event_endpoints.delete(services(), tenant(), endpoint_id)
    return json_response(None, 204)


# --- channel webhooks (signed by the provider, no tenant key) -------------------------------------
WEBHOOK = "/v1/webhooks/{channel}/{binding_id}"
WEBCHAT = "/v1/webhooks/webchat/{binding_id}"


@route(WEBHOOK, "POST")
def channel_webhook(channel: str, binding_id: str) -> Response:
    return _webhook(channel, binding_id)


@route(WEBHOOK, "GET")
def channel_webhook_check(channel: str, binding_id: str) -> Response:
    return _webhook(channel, binding_id)  # the WhatsApp Cloud verification handshake


def _webhook(channel: str, binding_id: str) -> Response:
    request, query = _request(), _request().query_params or {}
    inbound = ingest.WebhookRequest(
        method=request.method, headers=request.headers, query=query, raw_body=request.raw_body or b"",
        url=ingest.webhook_request_url(base_url_of(request), channel, binding_id, query),
    )
    answer = ingest.ingest_webhook(services(), channel, binding_id, inbound)
    return Response(body=answer.body, status_code=answer.status, headers={"Content-Type": answer.content_type})


@route(WEBCHAT + "/messages", "GET")
def webchat_messages(binding_id: str) -> Response:
    request = _request()
    after = query_of(request, "after")
    return json_response(ingest.webchat_messages(services(), binding_id, request.headers, after))


@route(WEBCHAT + "/page", "GET")
def webchat_page(binding_id: str) -> Response:
    html, headers = render_webchat_page(services(), binding_id)
    return Response(body=html, status_code=200, headers=headers)


# --- the operator console (a page; it asks for a tenant key and calls the API above) -------------
@route("/v1/console", "GET")
def console_page() -> Response:
    return console.serve("index.html")


@route("/v1/console/{asset}", "GET")
def console_asset(asset: str) -> Response:
    return console.serve(asset)


# --- the turn queue ---------------------------------------------------------------------------------
@app.on_sqs_message(queue=os.environ.get("RUCHE_TURN_QUEUE_NAME", "ruche-dev-turns.fifo"), batch_size=10)
def turn_worker(event: SQSEvent) -> dict[str, Any]:
    """Turns from channel webhooks. Returns batchItemFailures (infra/ turns ReportBatchItemFailures on)."""
    return worker.handle_batch(event.to_dict(), event.context)
