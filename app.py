"""Ruche's Lambda functions: a table of contents of thin handlers. All logic lives in chalicelib/.

Every route is listed in chalicelib/api/openapi.py ROUTES (a test keeps the two equal).
"""

from __future__ import annotations

import os
from typing import Any

from chalice.app import Chalice, Response, SQSEvent

from chalicelib.api import admin, channels, console, event_endpoints, local_gateway, sessions, usage
from chalicelib.api.body import ACCEPTED_CONTENT_TYPES as BODY_TYPES
from chalicelib.api.errors import api_call, envelope_chalice_errors, json_response
from chalicelib.api.http import (
    base_url_of,
    body_of,
    model_of,
    page_of,
    parse_flag,
    query_of,
    require_admin,
    tenant_of,
    yaml_source_of,
)
from chalicelib.api.openapi import document
from chalicelib.api.pagination import paginate
from chalicelib.api.webchat_page import render as render_webchat_page
from chalicelib.runtime import agents, dead_letters, idempotency, ingest, interlocutors, lifecycle, turns, worker
from chalicelib.runtime.services import services

app = Chalice(app_name="ruche")
app.register_middleware(envelope_chalice_errors, "http")
local_gateway.install()  # chalice local / test client: unknown routes 404, no query values in access logs
AGENT = "/v1/agents/{agent_id}"


def _request() -> Any:
    return app.current_request


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/v1/openapi.json", methods=["GET"])
@api_call
def openapi() -> Response:
    return json_response(document())


# --- tenants, config, keys, secrets -------------------------------------------------------------
@app.route("/v1/tenants", methods=["POST"], content_types=BODY_TYPES)
@api_call
def create_tenant() -> Response:
    require_admin(_request())
    return json_response(admin.create_tenant(services(), model_of(_request(), admin.TenantCreate)), 201)


@app.route("/v1/tenants/{tenant_id}", methods=["DELETE"])
@api_call
def delete_tenant(tenant_id: str) -> Response:
    require_admin(_request())
    admin.delete_tenant(services(), tenant_id)
    return json_response(None, 204)


@app.route("/v1/dead-letters/replay", methods=["POST"])
@api_call
def replay_dead_letters() -> Response:
    require_admin(_request())
    return json_response(dead_letters.replay_dead_letters(services()).to_json())


@app.route("/v1/config", methods=["PUT"], content_types=BODY_TYPES)
@api_call
def put_config() -> Response:
    tenant = tenant_of(_request())
    return json_response(admin.put_config(services(), tenant, body_of(_request())))


@app.route("/v1/config", methods=["GET"])
@api_call
def get_config() -> Response:
    return json_response(admin.get_config(services(), tenant_of(_request())))


@app.route("/v1/keys", methods=["POST"])
@api_call
def create_key() -> Response:
    return json_response(admin.create_key(services(), tenant_of(_request())), 201)


@app.route("/v1/keys", methods=["GET"])
@api_call
def list_keys() -> Response:
    keys, cursor = paginate(admin.list_keys(services(), tenant_of(_request())), page_of(_request()))
    return json_response({"keys": keys, "next_cursor": cursor})


@app.route("/v1/keys/{key_id}", methods=["DELETE"])
@api_call
def revoke_key(key_id: str) -> Response:
    admin.revoke_key(services(), tenant_of(_request()), key_id)
    return json_response(None, 204)


@app.route("/v1/secrets/{name}", methods=["PUT"], content_types=BODY_TYPES)
@api_call
def put_secret(name: str) -> Response:
    tenant = tenant_of(_request())
    admin.put_secret(services(), tenant, name, model_of(_request(), admin.SecretPut))
    return json_response(None, 204)


# --- agents ---------------------------------------------------------------------------------------
@app.route("/v1/agents", methods=["GET"])
@api_call
def list_agents() -> Response:
    found, cursor = paginate(agents.list_agents(services(), tenant_of(_request())), page_of(_request()))
    return json_response({"agents": found, "next_cursor": cursor})


@app.route(AGENT, methods=["PUT"], content_types=BODY_TYPES)
@api_call
def put_agent(agent_id: str) -> Response:
    tenant = tenant_of(_request())
    version = agents.publish(
        services(), tenant, agent_id, body_of(_request()), _request().headers.get("if-match"),
        source=yaml_source_of(_request()),
    )
    return json_response({"agent_id": agent_id, "version": version}, headers={"ETag": f'"{version}"'})


@app.route(AGENT, methods=["GET"])
@api_call
def get_agent(agent_id: str) -> Response:
    tenant = tenant_of(_request())
    published = agents.load(
        services(), tenant, agent_id, agents.parse_version(query_of(_request(), "version"))
    )
    document = (agents.source_document(published) if query_of(_request(), "format") == "source"
                else published.bundle.to_document())
    return json_response(document, headers={"ETag": f'"{published.version}"'})


@app.route(AGENT, methods=["DELETE"])
@api_call
def delete_agent(agent_id: str) -> Response:
    agents.delete(services(), tenant_of(_request()), agent_id)
    return json_response(None, 204)


@app.route(f"{AGENT}/versions", methods=["GET"])
@api_call
def agent_versions(agent_id: str) -> Response:
    found, cursor = paginate(
        agents.versions(services(), tenant_of(_request()), agent_id), page_of(_request())
    )
    return json_response({"versions": found, "next_cursor": cursor})


@app.route(f"{AGENT}/rollback", methods=["POST"], content_types=BODY_TYPES)
@api_call
def rollback_agent(agent_id: str) -> Response:
    tenant = tenant_of(_request())
    body = model_of(_request(), agents.RollbackRequest)
    version = agents.rollback(
        services(), tenant, agent_id, body.version, if_match=_request().headers.get("if-match")
    )
    return json_response({"agent_id": agent_id, "version": version}, headers={"ETag": f'"{version}"'})


@app.route(AGENT + "/{kind}/{item_id}", methods=["PUT"], content_types=BODY_TYPES)
@api_call
def put_agent_item(agent_id: str, kind: str, item_id: str) -> Response:
    tenant, body = tenant_of(_request()), body_of(_request())
    if_match = _request().headers.get("if-match")
    version = agents.put_item(services(), tenant, agent_id, kind, item_id, item=body, if_match=if_match)
    return json_response({"agent_id": agent_id, "version": version}, headers={"ETag": f'"{version}"'})


@app.route(AGENT + "/{kind}/{item_id}", methods=["GET"])
@api_call
def get_agent_item(agent_id: str, kind: str, item_id: str) -> Response:
    return json_response(agents.get_item(services(), tenant_of(_request()), agent_id, kind, item_id))


@app.route(AGENT + "/{kind}/{item_id}", methods=["DELETE"])
@api_call
def delete_agent_item(agent_id: str, kind: str, item_id: str) -> Response:
    tenant = tenant_of(_request())
    version = agents.delete_item(
        services(), tenant, agent_id, kind, item_id, if_match=_request().headers.get("if-match")
    )
    return json_response({"agent_id": agent_id, "version": version}, headers={"ETag": f'"{version}"'})


@app.route(f"{AGENT}/config/resolved", methods=["GET"])
@api_call
def resolved_config(agent_id: str) -> Response:
    request = _request()
    resolved = agents.resolved_config(
        services(),
        tenant_of(request),
        agent_id,
        channel=query_of(request, "channel"),
        scenario_id=query_of(request, "scenario"),
        step_id=query_of(request, "step"),
    )
    return json_response(resolved.to_json())


# --- usage and insights ----------------------------------------------------------------------------
@app.route("/v1/usage", methods=["GET"])
@api_call
def tenant_usage() -> Response:
    request = _request()
    return json_response(usage.tenant_usage(services(), tenant_of(request), query_of(request, "from"),
                                            query_of(request, "to"), query_of(request, "agent_id")))


@app.route("/v1/tenants/{tenant_id}/usage", methods=["GET"])
@api_call
def admin_usage(tenant_id: str) -> Response:
    request = _request()
    require_admin(request)
    return json_response(usage.admin_usage(services(), tenant_id, query_of(request, "from"),
                                           query_of(request, "to"), query_of(request, "agent_id")))


@app.route(f"{AGENT}/insights", methods=["GET"])
@api_call
def agent_insights(agent_id: str) -> Response:
    request = _request()
    return json_response(usage.agent_insights(services(), tenant_of(request), agent_id, query_of(request, "from"),
                                              query_of(request, "to")))


# --- channel bindings -----------------------------------------------------------------------------
@app.route(f"{AGENT}/channels", methods=["POST"], content_types=BODY_TYPES)
@api_call
def create_binding(agent_id: str) -> Response:
    request = _request()
    tenant = tenant_of(request)
    body = model_of(request, channels.BindingCreate)
    return json_response(channels.create(services(), tenant, agent_id, body, base_url_of(request)), 201)


@app.route(f"{AGENT}/channels", methods=["GET"])
@api_call
def list_bindings(agent_id: str) -> Response:
    request = _request()
    found = channels.list_bindings(services(), tenant_of(request), agent_id, base_url_of(request))
    page, cursor = paginate(found, page_of(request))
    return json_response({"channels": page, "next_cursor": cursor})


@app.route(AGENT + "/channels/{binding_id}", methods=["PUT"], content_types=BODY_TYPES)
@api_call
def update_binding(agent_id: str, binding_id: str) -> Response:
    request = _request()
    tenant = tenant_of(request)
    body = model_of(request, channels.BindingUpdate)
    return json_response(
        channels.update(services(), tenant, agent_id, binding_id, body, base=base_url_of(request))
    )


@app.route(AGENT + "/channels/{binding_id}", methods=["GET"])
@api_call
def get_binding(agent_id: str, binding_id: str) -> Response:
    request = _request()
    return json_response(
        channels.get(services(), tenant_of(request), agent_id, binding_id, base_url_of(request))
    )


@app.route(AGENT + "/channels/{binding_id}", methods=["DELETE"])
@api_call
def delete_binding(agent_id: str, binding_id: str) -> Response:
    channels.delete(services(), tenant_of(_request()), agent_id, binding_id)
    return json_response(None, 204)


# --- interlocutors --------------------------------------------------------------------------------
@app.route(AGENT + "/interlocutors/{interlocutor_id}", methods=["GET"])
@api_call
def get_interlocutor(agent_id: str, interlocutor_id: str) -> Response:
    request = _request()
    history = (query_of(request, "history") or "").lower() in {"true", "1", "yes"}
    page = page_of(request)
    view = interlocutors.get(services(), tenant_of(request), agent_id, interlocutor_id, history=history)
    if history:  # the value history is the one list of this view: ?limit= and next_cursor page it
        view["history"], view["next_cursor"] = paginate(view["history"], page)
    return json_response(view)


@app.route(AGENT + "/interlocutors/{interlocutor_id}", methods=["PATCH"], content_types=BODY_TYPES)
@api_call
def patch_interlocutor(agent_id: str, interlocutor_id: str) -> Response:
    tenant = tenant_of(_request())
    body = model_of(_request(), interlocutors.InterlocutorPatch)
    return json_response(interlocutors.patch(services(), tenant, agent_id, interlocutor_id, body))


@app.route(AGENT + "/interlocutors/{interlocutor_id}", methods=["DELETE"])
@api_call
def erase_interlocutor(agent_id: str, interlocutor_id: str) -> Response:
    interlocutors.erase(services(), tenant_of(_request()), agent_id, interlocutor_id)
    return json_response(None, 204)


# --- turns and sessions ---------------------------------------------------------------------------
@app.route(f"{AGENT}/turns", methods=["POST"], content_types=BODY_TYPES)
@api_call
def post_turn(agent_id: str) -> Response:
    request = _request()
    tenant = tenant_of(request)
    body = model_of(request, turns.TurnRequest)
    if parse_flag(query_of(request, "async"), "async"):
        return json_response(turns.enqueue(services(), tenant, agent_id, body).model_dump(), 202)
    reply = idempotency.run_sync_once(services(), tenant, agent_id, body, request.headers.get("idempotency-key"))
    return json_response(reply.model_dump(mode="json"))


@app.route(f"{AGENT}/sessions", methods=["GET"])
@api_call
def list_sessions(agent_id: str) -> Response:
    request = _request()
    where = sessions.session_filter(request.query_params)
    return json_response(sessions.list_sessions(services(), tenant_of(request), agent_id, page_of(request), where))


@app.route(AGENT + "/sessions/{session_id}/turns", methods=["GET"])
@api_call
def session_turns(agent_id: str, session_id: str) -> Response:
    request = _request()
    return json_response(
        sessions.turns(services(), tenant_of(request), agent_id, session_id, page_of(request))
    )


@app.route(AGENT + "/sessions/{session_id}/messages", methods=["GET"])
@api_call
def session_messages(agent_id: str, session_id: str) -> Response:
    request = _request()
    after = query_of(request, "after")
    return json_response(
        sessions.messages(services(), tenant_of(request), agent_id, session_id, after, page=page_of(request))
    )


@app.route(AGENT + "/sessions/{session_id}/resume", methods=["POST"])
@api_call
def resume_session(agent_id: str, session_id: str) -> Response:
    return json_response(lifecycle.resume(services(), tenant_of(_request()), agent_id, session_id))


@app.route(AGENT + "/sessions/{session_id}/end", methods=["POST"])
@api_call
def end_session(agent_id: str, session_id: str) -> Response:
    return json_response(lifecycle.end(services(), tenant_of(_request()), agent_id, session_id))


# --- outbound event endpoints ---------------------------------------------------------------------
EVENT_ENDPOINT = "/v1/event-endpoints/{endpoint_id}"


@app.route("/v1/event-endpoints", methods=["GET"])
@api_call
def list_event_endpoints() -> Response:
    request = _request()
    found, cursor = paginate(event_endpoints.list_endpoints(services(), tenant_of(request)), page_of(request))
    return json_response({"event_endpoints": found, "next_cursor": cursor})


@app.route(EVENT_ENDPOINT, methods=["PUT"], content_types=BODY_TYPES)
@api_call
def put_event_endpoint(endpoint_id: str) -> Response:
    tenant = tenant_of(_request())
    body = event_endpoints.parse_put(services(), body_of(_request()))
    return json_response(event_endpoints.put(services(), tenant, endpoint_id, body))


@app.route(EVENT_ENDPOINT, methods=["GET"])
@api_call
def get_event_endpoint(endpoint_id: str) -> Response:
    return json_response(event_endpoints.get(services(), tenant_of(_request()), endpoint_id))


@app.route(EVENT_ENDPOINT, methods=["DELETE"])
@api_call
def delete_event_endpoint(endpoint_id: str) -> Response:
    event_endpoints.delete(services(), tenant_of(_request()), endpoint_id)
    return json_response(None, 204)


# --- channel webhooks (signed by the provider, no tenant key) -------------------------------------
WEBHOOK = "/v1/webhooks/{channel}/{binding_id}"
WEBCHAT = "/v1/webhooks/webchat/{binding_id}"


@app.route(WEBHOOK, methods=["POST"], content_types=["application/x-www-form-urlencoded", "application/json"])
@api_call
def channel_webhook(channel: str, binding_id: str) -> Response:
    return _webhook(channel, binding_id)


@app.route(WEBHOOK, methods=["GET"])
@api_call
def channel_webhook_check(channel: str, binding_id: str) -> Response:
    return _webhook(channel, binding_id)  # the WhatsApp Cloud verification handshake


def _webhook(channel: str, binding_id: str) -> Response:
    request, query = _request(), _request().query_params or {}
    answer = ingest.ingest_webhook(
        services(), channel, binding_id, method=request.method, headers=request.headers, query=query,
        raw_body=request.raw_body or b"",
        url=ingest.webhook_request_url(base_url_of(request), channel, binding_id, query),
    )
    return Response(body=answer.body, status_code=answer.status, headers={"Content-Type": answer.content_type})


@app.route(WEBCHAT + "/messages", methods=["GET"])
@api_call
def webchat_messages(binding_id: str) -> Response:
    request = _request()
    after = query_of(request, "after")
    return json_response(ingest.webchat_messages(services(), binding_id, request.headers, after))


@app.route(WEBCHAT + "/page", methods=["GET"])
@api_call
def webchat_page(binding_id: str) -> Response:
    html, headers = render_webchat_page(services(), binding_id)
    return Response(body=html, status_code=200, headers=headers)


# --- the operator console (a page; it asks for a tenant key and calls the API above) -------------
@app.route("/v1/console", methods=["GET"])
@api_call
def console_page() -> Response:
    return console.serve("index.html")


@app.route("/v1/console/{asset}", methods=["GET"])
@api_call
def console_asset(asset: str) -> Response:
    return console.serve(asset)


# --- the turn queue ---------------------------------------------------------------------------------
@app.on_sqs_message(queue=os.environ.get("RUCHE_TURN_QUEUE_NAME", "ruche-dev-turns.fifo"), batch_size=10)
def turn_worker(event: SQSEvent) -> dict[str, Any]:
    """Turns from channel webhooks. Returns batchItemFailures (infra/ turns ReportBatchItemFailures on)."""
    return worker.handle_batch(event.to_dict(), event.context)
