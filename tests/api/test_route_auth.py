"""Every route's authentication, declared once in api/routes.py, is what the route enforces.

The walk covers `app.routes` (what Chalice registered), not the table: a route added to app.py is
walked as soon as it exists, and it cannot exist without a declaration (Router refuses it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.app import Chalice

from app import app
from chalicelib.api.http import Router
from chalicelib.api.routes import ROUTES
from chalicelib.domain.channel import ChannelName
from tests.api.harness import ADMIN_KEY, Api, a_bundle, error_of
from tests.channels.factories import SECRETS
from tests.conftest import Aws

AUTH_KINDS = {"none", "tenant", "admin", "channel"}
DECLARED = {(route.path, route.method): route.auth for route in ROUTES}
QUERIES = {(route.path, route.method): route.query for route in ROUTES}
WEBHOOK = "/v1/webhooks/{channel}/{binding_id}"
# Routes that name the object in the caller's own namespace: another tenant's PUT makes its own.
UPSERTS = {("/v1/agents/{agent_id}", "PUT"), ("/v1/event-endpoints/{endpoint_id}", "PUT")}
# A list read from the caller's own index under that agent id (sessions of a deleted agent stay
# listable, api/sessions.py): another tenant gets its own, empty, list (test_session_list_route.py).
OWN_INDEX = {("/v1/agents/{agent_id}/sessions", "GET")}
TENANT_OBJECTS = ("{agent_id}", "{key_id}", "{endpoint_id}")


def registered() -> list[tuple[str, str]]:
    return sorted((path, method) for path, methods in app.routes.items() for method in methods)


@dataclass
class World:
    """Tenant A with one of everything, tenant B with nothing, and the values of every path parameter."""

    tenant_a: str
    key_a: str
    key_b: str
    params: dict[str, str]
    bindings: dict[str, str]  # channel -> A's binding id

    def path(self, template: str, method: str) -> str:
        values = dict(self.params)
        if template == WEBHOOK:  # the GET is WhatsApp's handshake; the POST any signed channel
            values["channel"] = "whatsapp" if method == "GET" else "twilio"
            values["binding_id"] = self.bindings[values["channel"]]
        elif template.startswith("/v1/webhooks/webchat/"):
            values["binding_id"] = self.bindings["webchat"]
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        assert "{" not in template, f"no value for a parameter of {template}"
        return template


def body_for(path: str, method: str) -> Any:
    """A valid body, so a refusal is the route's auth or its lookup, never validation."""
    bodies: dict[tuple[str, str], Any] = {
        ("/v1/tenants", "POST"): {"name": "another"},
        ("/v1/config", "PUT"): {},
        ("/v1/secrets/{name}", "PUT"): {"value": "s3cret"},
        ("/v1/agents/{agent_id}", "PUT"): a_bundle(),
        ("/v1/agents/{agent_id}/rollback", "POST"): {"version": 1},
        ("/v1/agents/{agent_id}/{kind}/{item_id}", "PUT"): {
            "id": "refunds", "condition": "the user asks for a refund", "action": "explain the policy"},
        ("/v1/agents/{agent_id}/channels", "POST"): {"channel": "webchat", "secrets": {"token": "t" * 24}},
        ("/v1/agents/{agent_id}/channels/{binding_id}", "PUT"): {"config": {}},
        ("/v1/agents/{agent_id}/interlocutors/{interlocutor_id}", "PATCH"): {"fields": {}},
        ("/v1/agents/{agent_id}/turns", "POST"): {"user_id": "u1", "message": "hello"},
        ("/v1/event-endpoints/{endpoint_id}", "PUT"): {
            "url": "https://example.com/hooks", "events": ["handoff"], "secret": "s" * 20},
    }
    return bodies.get((path, method))


@pytest.fixture
def world(api: Api, aws: Aws) -> Iterator[World]:
    tenant_a, key_a = api.new_tenant("a")
    _, key_b = api.new_tenant("b")
    assert api.call("PUT", "/v1/agents/support", key_a, a_bundle()).status_code == 200
    bindings = {}
    for channel in ("twilio", "whatsapp", "webchat"):
        created = api.call("POST", "/v1/agents/support/channels", key_a,
                           {"channel": channel, "secrets": SECRETS[ChannelName(channel)]})
        assert created.status_code == 201, created.body
        bindings[channel] = created.json_body["binding_id"]
    second_key = api.call("POST", "/v1/keys", key_a).json_body["key_id"]
    assert api.call("PUT", "/v1/event-endpoints/ops", key_a, body_for("/v1/event-endpoints/{endpoint_id}", "PUT")
                    ).status_code == 200
    turn = api.call("POST", "/v1/agents/support/turns", key_a, {"user_id": "u1", "message": "hello"})
    assert turn.status_code == 200, turn.body
    params = {
        "tenant_id": tenant_a, "agent_id": "support", "kind": "rules", "item_id": "refunds",
        "binding_id": bindings["webchat"], "interlocutor_id": turn.json_body["interlocutor_id"],
        "session_id": turn.json_body["session_id"], "endpoint_id": "ops", "key_id": second_key,
        "name": "llm-key", "asset": "app.js",
    }
    yield World(tenant_a=tenant_a, key_a=key_a, key_b=key_b, params=params, bindings=bindings)


def call(api: Api, world: World, path: str, method: str, key: str | None) -> Any:
    dated = "from" in QUERIES[(path, method)]  # a range is required there: without it, a 422 first
    query = "?from=2026-01-01&to=2026-01-31" if dated else ""
    return api.call(method, world.path(path, method) + query, key, body_for(path, method))


def refused(response: Any, *codes: str) -> str:
    """The error code of an enveloped refusal (fails on any other answer)."""
    assert response.status_code in {401, 403, 404}, (response.status_code, response.body)
    code = error_of(response)["code"]
    assert code in codes, (response.status_code, code)
    return str(code)


def test_every_registered_route_declares_one_known_auth() -> None:
    assert set(registered()) == set(DECLARED)
    assert {DECLARED[route] for route in registered()} <= AUTH_KINDS
    with pytest.raises(KeyError):  # an undeclared route cannot be registered
        Router(Chalice(app_name="probe"))("/v1/undeclared", "GET")


def test_without_credentials_every_route_answers_as_it_declares(api: Api, world: World) -> None:
    for path, method in registered():
        response = call(api, world, path, method, None)
        auth = DECLARED[(path, method)]
        if auth in {"tenant", "admin"}:
            assert response.status_code == 401, (path, method)
            refused(response, "unauthorized")
        elif auth == "channel":
            refused(response, "unauthorized", "forbidden", "invalid_signature")
        else:
            assert response.status_code == 200, (path, method, response.status_code)


def test_a_tenant_key_opens_no_admin_or_channel_route_and_the_admin_key_no_tenant_route(
        api: Api, world: World) -> None:
    for path, method in registered():
        auth = DECLARED[(path, method)]
        if auth == "admin":
            assert refused(call(api, world, path, method, world.key_a), "unauthorized"), (path, method)
        elif auth == "tenant":
            assert refused(call(api, world, path, method, ADMIN_KEY), "unauthorized"), (path, method)
        elif auth == "channel":  # a tenant key is not the binding's token, nor a provider's signature
            refused(call(api, world, path, method, world.key_a), "unauthorized", "forbidden", "invalid_signature")


def test_another_tenants_key_reaches_none_of_its_objects(api: Api, world: World) -> None:
    tenant_routes = [route for route in registered() if DECLARED[route] == "tenant"]
    # The upserts go last: B's PUT of "support" makes B an agent of that name, and the walk is done.
    wrong = []
    for path, method in sorted(tenant_routes, key=lambda route: route in UPSERTS):
        response = call(api, world, path, method, world.key_b)
        if (path, method) in UPSERTS:
            expected = {200}
        elif any(name in path for name in TENANT_OBJECTS) and (path, method) not in OWN_INDEX:
            expected = {404}
        else:  # B's own namespace: config, keys, secrets, lists, usage; nothing of A's shows
            expected = {200, 201, 204}
            shown = response.body.decode() if isinstance(response.body, bytes) else str(response.body)
            for secret_of_a in (world.tenant_a, world.params["key_id"], *world.bindings.values()):
                assert secret_of_a not in shown, (path, method)
        if response.status_code not in expected:
            wrong.append((method, path, response.status_code))
        elif response.status_code == 404:
            refused(response, "not_found")
    assert wrong == []
    # B's upserts made B's own objects: A's are as they were.
    assert api.call("GET", "/v1/agents/support/versions", world.key_a).json_body["versions"][0]["version"] == 1
    assert api.call("GET", "/v1/event-endpoints/ops", world.key_a).status_code == 200
    assert api.call("GET", "/v1/agents", world.key_a).status_code == 200  # A's second key was not revoked


def test_every_route_lets_its_declared_caller_through(api: Api, world: World) -> None:
    keys = {"tenant": world.key_a, "admin": ADMIN_KEY, "none": None}
    webchat = f"/v1/webhooks/webchat/{world.bindings['webchat']}"
    visitor = api.call("POST", webchat, SECRETS[ChannelName.WEBCHAT]["token"], {"message": "hi"}).json_body[
        "visitor_token"]

    def order(route: tuple[str, str]) -> tuple[bool, bool, int]:
        # Deletions last, the longest paths (items) before the agent, the tenant's own deletion at the end.
        path, method = route
        return method == "DELETE", DECLARED[route] == "admin" and method == "DELETE", -len(path)

    for path, method in sorted(registered(), key=order):
        auth = DECLARED[(path, method)]
        if auth == "channel":
            response = _channel_call(api, world, path, method, visitor)
        else:
            response = call(api, world, path, method, keys[auth])
        assert response.status_code not in {401, 403}, (path, method, response.body)
        assert response.status_code < 500, (path, method, response.body)


def _channel_call(api: Api, world: World, path: str, method: str, visitor: str) -> Any:
    """The channel's own credential: WhatsApp's verify token, the webchat binding and visitor tokens.

    A signed Twilio POST is the adapters' business (tests/channels, tests/security): here the route
    only has to reach the signature check, which the unsigned walks above show it does.
    """
    target = world.path(path, method)
    if path == WEBHOOK and method == "GET":
        token = SECRETS[ChannelName.WHATSAPP]["verify_token"]
        return api.call("GET", f"{target}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42")
    if path.endswith("/messages"):
        return api.call("GET", target, SECRETS[ChannelName.WEBCHAT]["token"], headers={"X-Visitor-Token": visitor})
    return api.call("POST", f"/v1/webhooks/webchat/{world.bindings['webchat']}", SECRETS[ChannelName.WEBCHAT]["token"],
                    {"message": "again", "visitor_token": visitor})
