"""A hostile tenant points LLM or embedding calls at its own server to collect the platform's key.

The platform layer names the platform's key (`llm.api_key_env`). A tenant layer that changes where
calls go must name its own key, and the platform's key is attached only to calls that go to the
platform's own provider and base URL. Two real local servers play the platform's provider and the
tenant's collector; the app is driven over its HTTP path.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.harness import Api, a_bundle, paths_of
from tests.support.chat_server import ChatServer

PLATFORM_KEY = "sk-platform-SECRET-0001"
TENANT_KEY = "sk-tenant-own-0002"
KEY_VARIABLE = "RUCHE_TEST_PLATFORM_LLM_KEY"


@pytest.fixture
def platform_llm() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


@pytest.fixture
def collector() -> Iterator[ChatServer]:
    """The tenant's own server: whatever reaches it, the tenant reads."""
    with ChatServer() as server:
        yield server


@pytest.fixture
def keyed(api: Api, platform_llm: ChatServer, monkeypatch: pytest.MonkeyPatch) -> Api:
    """A platform whose layer sends LLM calls to its own provider with its own key."""
    from chalicelib.runtime.services import reset_services, services

    monkeypatch.setenv("RUCHE_LLM_PROVIDER", "openai")
    monkeypatch.setenv("RUCHE_LLM_BASE_URL", platform_llm.base_url)
    monkeypatch.setenv("RUCHE_LLM_API_KEY_ENV", KEY_VARIABLE)
    monkeypatch.setenv(KEY_VARIABLE, PLATFORM_KEY)
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")  # both servers listen on 127.0.0.1
    reset_services()
    api.services = services()
    return api


def authorizations(server: ChatServer) -> list[str]:
    return [request.headers.get("authorization", "") for request in server.requests]


def test_a_tenant_layer_that_moves_llm_calls_without_its_own_key_is_422(keyed: Api, collector: ChatServer) -> None:
    _, key = keyed.new_tenant()
    response = keyed.call("PUT", "/v1/config", key, {"llm": {"base_url": collector.base_url}})
    assert (response.status_code, paths_of(response)) == (422, ["llm.api_key_secret"])
    assert keyed.call("GET", "/v1/config", key).json_body == {}


@pytest.mark.parametrize("where", ["agent", "channel", "scenario", "step"])
def test_a_bundle_layer_that_moves_llm_calls_without_its_own_key_is_422(
        keyed: Api, collector: ChatServer, where: str) -> None:
    _, key = keyed.new_tenant()
    bundle = a_bundle()
    moved = {"llm": {"base_url": collector.base_url}}
    path = {"agent": "agent.config", "channel": "channels.webchat.config", "scenario": "scenarios[0].config",
            "step": "scenarios[0].steps[0].config"}[where]
    if where == "agent":
        bundle["agent"]["config"] = moved
    elif where == "channel":
        bundle["channels"]["webchat"]["config"] = moved
    elif where == "scenario":
        bundle["scenarios"][0]["config"] = moved
    else:
        bundle["scenarios"][0]["steps"][0]["config"] = moved
    response = keyed.call("PUT", "/v1/agents/support", key, bundle)
    assert (response.status_code, paths_of(response)) == (422, [f"{path}.llm.api_key_secret"])
    assert keyed.call("GET", "/v1/agents/support", key).status_code == 404
    assert collector.requests == []


def test_a_layer_with_its_own_key_may_move_calls_and_its_key_is_the_one_sent(
        keyed: Api, collector: ChatServer, platform_llm: ChatServer) -> None:
    _, key = keyed.new_tenant()
    assert keyed.call("PUT", "/v1/secrets/mine", key, {"value": TENANT_KEY}).status_code == 204
    config = {"llm": {"base_url": collector.base_url, "api_key_secret": "mine"}}
    assert keyed.call("PUT", "/v1/config", key, config).status_code == 200
    assert keyed.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    keyed.call("POST", "/v1/agents/support/turns", key, {"user_id": "u1", "message": "I want a refund"})
    assert authorizations(collector) and set(authorizations(collector)) == {f"Bearer {TENANT_KEY}"}
    assert platform_llm.requests == []


def test_a_stored_layer_that_moved_calls_never_gets_the_platform_key(
        keyed: Api, collector: ChatServer, platform_llm: ChatServer) -> None:
    """Layers written before the rule (or before the platform named a key) are stopped at call time."""
    tenant_id, key = keyed.new_tenant()
    keyed.services.config_store.put_tenant_layer(
        tenant_id, {"llm": {"base_url": collector.base_url}, "embeddings": {"provider": "openai"}})
    published = keyed.call("PUT", "/v1/agents/support", key, a_bundle())  # embeds the rules: a call
    keyed.call("POST", "/v1/agents/support/turns", key, {"user_id": "u1", "message": "I want a refund"})
    paths = {request.path for request in collector.requests}
    assert "/v1/embeddings" in paths and "/v1/chat/completions" in paths, (published.body, paths)
    assert all(PLATFORM_KEY not in value for value in authorizations(collector))
    assert platform_llm.requests == []


def test_the_platform_key_still_goes_to_the_platform_provider(keyed: Api, platform_llm: ChatServer) -> None:
    """The control: without this, the refusals above could pass because no key was ever sent."""
    _, key = keyed.new_tenant()
    assert keyed.call("PUT", "/v1/config", key, {"llm": {"temperature": 0.2}}).status_code == 200
    assert keyed.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    keyed.call("POST", "/v1/agents/support/turns", key, {"user_id": "u1", "message": "I want a refund"})
    assert authorizations(platform_llm) and set(authorizations(platform_llm)) == {f"Bearer {PLATFORM_KEY}"}


def test_the_resolved_config_never_names_the_platform_key_variable(keyed: Api) -> None:
    _, key = keyed.new_tenant()
    assert keyed.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    resolved = keyed.call("GET", "/v1/agents/support/config/resolved", key)
    assert resolved.status_code == 200
    assert KEY_VARIABLE not in resolved.body.decode()
    assert resolved.json_body["config"]["llm"]["api_key_env"] is None
