"""A hostile tenant aims the platform's outbound requests at its own network: all of them are refused.

Every outbound request goes through the one guarded transport (providers/transport.guarded_send),
which judges each URL's form and where it leads. Played over the app's HTTP path, with a real local
HTTP listener standing in for the platform's private network: it must receive nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from chalicelib.domain.channel import ChannelBinding, ChannelName
from chalicelib.runtime.local_worker import poll_once
from chalicelib.runtime.services import reset_services, services
from tests.api.harness import Api, a_bundle, paths_of
from tests.channels.factories import SECRETS
from tests.support.chat_server import ChatServer

HOST = "hooks.example.com"
REPLYING_AGENT = {
    "agent": {"name": "Store", "config": {}},
    "templates": [{"id": "hours", "mode": "exclusive", "text": "We open at 9am."}],
    "rules": [{"id": "opening_hours", "condition": "the customer asks when the store opens",
               "action": "give the opening hours", "templates": ["hours"]}],
}


@pytest.fixture
def internal() -> Iterator[ChatServer]:
    """A service on the platform's loopback: what a tenant must never reach."""
    with ChatServer() as server:
        server.answer({"sid": "SMx", "messages": [{"id": "wamid.x"}], "ok": True}, status=201)
        yield server


def odd_forms(port: int) -> list[str]:
    """Ways of writing 127.0.0.1 (or hiding the host) that some parser reads differently from another."""
    return [
        f"http://%31%32%37.0.0.1:{port}",  # urllib unquotes the host before connecting
        f"http://127.1:{port}",
        f"http://2130706433:{port}",
        f"http://0x7f.0.0.1:{port}",
        f"http://0177.0.0.1:{port}",
        f"http://user:pw@example.com:{port}",
        f"http://example.com\\@127.0.0.1:{port}",
        f"http://exa mple.com:{port}",
        f"http://[::1%25lo]:{port}",
        f"http://127.0.0.1.:{port}",
        f"http://ex\u0430mple.com:{port}",  # a Cyrillic "a"
    ]


def test_channel_api_base_urls_in_odd_forms_are_refused_and_nothing_is_stored(api: Api, internal: ChatServer) -> None:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    for url in odd_forms(internal.port):
        response = api.call("POST", "/v1/agents/support/channels", key, {
            "channel": "twilio", "secrets": SECRETS[ChannelName.TWILIO], "api_base_url": url})
        assert (response.status_code, paths_of(response)) == (422, ["api_base_url"]), url
    assert api.services.bindings.list(tenant_id, "support") == []


def test_tool_llm_and_event_urls_in_odd_forms_are_refused_at_write_time(api: Api, internal: ChatServer) -> None:
    _, key = api.new_tenant()
    for url in odd_forms(internal.port):
        bundle = a_bundle(tools=[{"id": "lookup", "url": f"{url}/lookup", "inputs": ["order_id"]}])
        published = api.call("PUT", "/v1/agents/support", key, bundle)
        assert (published.status_code, paths_of(published)) == (422, ["tools[0].url"]), url
        config = api.call("PUT", "/v1/config", key, {"llm": {"base_url": url, "api_key_secret": "mine"}})
        assert (config.status_code, paths_of(config)) == (422, ["llm.base_url"]), url
        endpoint = api.call("PUT", "/v1/event-endpoints/hooks", key,
                            {"url": url, "events": ["turn_completed"], "secret": "s" * 20})
        assert (endpoint.status_code, paths_of(endpoint)) == (422, ["url"]), url
    assert api.call("GET", "/v1/agents/support", key).status_code == 404
    assert api.call("GET", "/v1/config", key).json_body == {}
    assert internal.requests == []


def stored_binding(api: Api, key: str, tenant_id: str, channel: ChannelName, api_base_url: str,
                   **config: Any) -> str:
    """A binding already in the table (written before this release, or while the platform allowed
    private networks): the write-time check cannot help, so delivery must refuse it itself."""
    assert api.call("PUT", "/v1/agents/store", key, REPLYING_AGENT).status_code == 200
    binding = ChannelBinding(binding_id=f"bnd_{channel.value}_{secrets.token_hex(8)}", tenant_id=tenant_id,
                             agent_id="store", channel=channel, secrets=dict(SECRETS[channel]),
                             api_base_url=api_base_url, config=config)
    api.services.bindings.put(binding)
    return binding.binding_id


def sms_in(api: Api, binding_id: str) -> None:
    form = {"MessageSid": "SM42", "From": "+15550001", "To": "+15559999", "Body": "When do you open?"}
    signature = RequestValidator(SECRETS[ChannelName.TWILIO]["auth_token"]).compute_signature(
        f"https://{HOST}/v1/webhooks/twilio/{binding_id}", form)
    response = api.call("POST", f"/v1/webhooks/twilio/{binding_id}", raw=urlencode(form),
                        content_type="application/x-www-form-urlencoded",
                        headers={"Host": HOST, "X-Twilio-Signature": signature})
    assert response.status_code == 200, response.body


def run_worker(api: Api) -> None:
    while poll_once(api.services, wait_s=0):
        pass


@pytest.mark.parametrize("form", ["http://%31%32%37.0.0.1:{port}", "http://127.0.0.1:{port}",
                                  "http://localhost:{port}"])
def test_delivery_through_a_stored_loopback_binding_reaches_nothing(
        api: Api, internal: ChatServer, form: str) -> None:
    tenant_id, key = api.new_tenant()
    binding_id = stored_binding(api, key, tenant_id, ChannelName.TWILIO, form.format(port=internal.port),
                                **{"from": "+15559999"})
    sms_in(api, binding_id)
    run_worker(api)
    assert internal.requests == []


def whatsapp_in(api: Api, binding_id: str, wamid: str) -> None:
    message = {"from": "33612345678", "id": wamid, "timestamp": "1700000000", "type": "text",
               "text": {"body": "When do you open?"}}
    document = {"entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "1055"}, "messages": [message]}}]}]}
    raw = json.dumps(document).encode()
    secret = SECRETS[ChannelName.WHATSAPP]["app_secret"].encode()
    signature = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    response = api.call("POST", f"/v1/webhooks/whatsapp/{binding_id}", raw=raw,
                        headers={"X-Hub-Signature-256": signature})
    assert response.status_code == 200, response.body


@pytest.fixture
def private_network_allowed(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """A platform that allows private addresses (local development): only the path can be abused."""
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")
    reset_services()
    api.services = services()
    return api


def test_a_whatsapp_api_version_that_adds_a_path_is_refused_at_write_time(
        private_network_allowed: Api, internal: ChatServer) -> None:
    api = private_network_allowed
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    for version in ["internal/admin/x#", "v21.0/../../admin", "v21.0?x=1", "../x"]:
        response = api.call("POST", "/v1/agents/support/channels", key, {
            "channel": "whatsapp", "secrets": SECRETS[ChannelName.WHATSAPP], "api_base_url": internal.url,
            "config": {"api_version": version}})
        assert (response.status_code, paths_of(response)) == (422, ["config.api_version"]), version
    accepted = api.call("POST", "/v1/agents/support/channels", key, {
        "channel": "whatsapp", "secrets": SECRETS[ChannelName.WHATSAPP], "config": {"api_version": "v22.0"}})
    assert accepted.status_code == 201


def test_a_stored_whatsapp_api_version_or_number_cannot_inject_a_path_at_delivery(
        private_network_allowed: Api, internal: ChatServer) -> None:
    api = private_network_allowed
    tenant_id, key = api.new_tenant()
    injected = stored_binding(api, key, tenant_id, ChannelName.WHATSAPP, internal.url,
                              api_version="internal/admin/x#")
    whatsapp_in(api, injected, "wamid.in1")
    run_worker(api)
    assert internal.requests == []  # refused before sending

    number = ChannelBinding(binding_id=f"bnd_whatsapp_{secrets.token_hex(8)}", tenant_id=tenant_id, agent_id="store",
                            channel=ChannelName.WHATSAPP, api_base_url=internal.url,
                            secrets={**SECRETS[ChannelName.WHATSAPP], "phone_number_id": "../admin?x="})
    api.services.bindings.put(number)
    whatsapp_in(api, number.binding_id, "wamid.in2")
    run_worker(api)
    assert [request.path for request in internal.requests] == ["/v21.0/..%2Fadmin%3Fx%3D/messages"]



def test_a_name_that_rebinds_to_loopback_between_the_check_and_the_connection_reaches_nothing(
        api: Api, internal: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the check sees a public address, the connection would reach loopback."""
    import socket

    real = socket.getaddrinfo

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example.com":
            return real(host, port, *args, **kwargs)
        checking = "proto" in kwargs  # network._resolve asks with proto=; socket.create_connection does not
        address = "93.184.216.34" if checking else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/store", key, REPLYING_AGENT).status_code == 200
    created = api.call("POST", "/v1/agents/store/channels", key, {
        "channel": "twilio", "secrets": SECRETS[ChannelName.TWILIO], "config": {"from": "+15559999"},
        "api_base_url": f"http://rebind.example.com:{internal.port}"})
    assert created.status_code == 201, created.body  # public when written
    sms_in(api, created.json_body["binding_id"])
    run_worker(api)
    assert internal.requests == []
