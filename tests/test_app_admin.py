"""Admin and tenant routes: tenants, the tenant config layer, API keys, secrets."""

from __future__ import annotations

from tests.api.harness import ADMIN_KEY, Api, a_bundle, api, error_of, paths_of

__all__ = ["api"]


def test_creating_a_tenant_returns_its_id_and_a_key_that_works(api: Api) -> None:
    response = api.call("POST", "/v1/tenants", ADMIN_KEY, {"name": "acme"})
    assert response.status_code == 201
    tenant_id, key = response.json_body["tenant_id"], response.json_body["api_key"]
    assert api.services.tenants.get(tenant_id).name == "acme"  # type: ignore[union-attr]
    assert api.call("GET", "/v1/config", key).json_body == {}


def test_creating_a_tenant_validates_the_body_and_writes_nothing_on_failure(api: Api) -> None:
    before = api.services.dynamodb.scan(TableName=api.services.settings.table)["Count"]
    response = api.call("POST", "/v1/tenants", ADMIN_KEY, {"name": "", "extra": 1})
    assert response.status_code == 422
    assert sorted(paths_of(response)) == ["extra", "name"]
    assert api.call("POST", "/v1/tenants", ADMIN_KEY, raw="{nope").status_code == 400
    assert api.services.dynamodb.scan(TableName=api.services.settings.table)["Count"] == before


def test_a_yaml_tenant_body_is_accepted_and_other_content_types_get_415(api: Api) -> None:
    response = api.call(
        "POST", "/v1/tenants", ADMIN_KEY, raw="name: yaml-co\n", content_type="application/yaml"
    )
    assert response.status_code == 201
    assert (
        api.call("POST", "/v1/tenants", ADMIN_KEY, raw="name=x", content_type="text/plain").status_code == 415
    )


def test_deleting_a_tenant_erases_its_data_and_its_keys_stop_working(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    assert api.call("DELETE", f"/v1/tenants/{tenant_id}", ADMIN_KEY).status_code == 204
    assert api.call("GET", "/v1/agents", key).status_code == 401
    assert api.services.bundles.load(tenant_id, "support") is None
    assert api.call("DELETE", f"/v1/tenants/{tenant_id}", ADMIN_KEY).status_code == 404
    assert api.call("DELETE", "/v1/tenants/other", "rk_wrong").status_code == 401


def test_the_tenant_config_layer_round_trips(api: Api) -> None:
    _, key = api.new_tenant()
    layer = {
        "llm": {"temperature": 0.2, "tasks": {"judge": {"model": "j"}}},
        "enforcement": {"llm_judge": False},
    }
    assert api.call("PUT", "/v1/config", key, layer).json_body == layer
    assert api.call("GET", "/v1/config", key).json_body == layer


def test_unknown_restricted_and_mistyped_config_keys_are_422_with_paths_and_nothing_is_stored(
    api: Api,
) -> None:
    tenant_id, key = api.new_tenant()
    bad = {
        "llm": {"api_key_env": "AWS_SECRET_ACCESS_KEY", "colour": "red"},
        "network": {"allow_private": True},
    }
    response = api.call("PUT", "/v1/config", key, bad)
    assert response.status_code == 422
    assert sorted(paths_of(response)) == ["llm.api_key_env", "llm.colour", "network.allow_private"]
    typed = api.call("PUT", "/v1/config", key, {"enforcement": {"max_regeneration_attempts": 9}})
    assert (typed.status_code, paths_of(typed)) == (422, ["enforcement.max_regeneration_attempts"])
    assert api.call("PUT", "/v1/config", key, [1]).status_code == 422
    assert api.services.config_store.get_tenant_layer(tenant_id) == {}


def test_a_tenant_llm_base_url_on_a_private_address_is_refused(api: Api) -> None:
    _, key = api.new_tenant()
    response = api.call("PUT", "/v1/config", key, {"llm": {"base_url": "http://169.254.169.254/latest"}})
    assert (response.status_code, paths_of(response)) == (422, ["llm.base_url"])


def test_keys_are_listed_without_secrets_and_paginated(api: Api) -> None:
    _, key = api.new_tenant()
    created = api.call("POST", "/v1/keys", key)
    assert created.status_code == 201 and created.json_body["api_key"].startswith("rk_")
    page = api.call("GET", "/v1/keys?limit=1", key).json_body
    assert len(page["keys"]) == 1 and page["next_cursor"]
    rest = api.call("GET", f"/v1/keys?limit=1&cursor={page['next_cursor']}", key).json_body
    listed = page["keys"] + rest["keys"]
    assert {item["key_id"] for item in listed} >= {created.json_body["key_id"]}
    assert all(set(item) == {"key_id", "created_at", "revoked"} for item in listed)
    assert api.call("GET", "/v1/keys?limit=0", key).status_code == 422


def test_revoking_an_unknown_or_another_tenants_key_is_404(api: Api) -> None:
    _, key = api.new_tenant("a")
    _, other = api.new_tenant("b")
    other_key_id = api.call("POST", "/v1/keys", other).json_body["key_id"]
    assert api.call("DELETE", "/v1/keys/key_nope", key).status_code == 404
    assert api.call("DELETE", f"/v1/keys/{other_key_id}", key).status_code == 404


def test_secrets_are_stored_encrypted_and_never_returned(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    response = api.call("PUT", "/v1/secrets/openai", key, {"value": "sk-very-secret"})
    assert (response.status_code, response.body) == (204, b"")
    assert api.services.secrets.get(tenant_id, "openai") == "sk-very-secret"
    raw = api.services.dynamodb.scan(TableName=api.services.settings.table)
    assert "sk-very-secret" not in str(raw)
    assert api.call("GET", "/v1/secrets/openai", key).status_code in {403, 404, 405}


def test_a_bad_secret_name_or_body_is_422(api: Api) -> None:
    _, key = api.new_tenant()
    assert paths_of(api.call("PUT", "/v1/secrets/bad%20name", key, {"value": "x"})) == ["name"]
    response = api.call("PUT", "/v1/secrets/ok", key, {"value": ""})
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_input")


def test_a_tenant_tools_base_url_on_a_private_address_is_refused(api: Api) -> None:
    _, key = api.new_tenant()
    response = api.call("PUT", "/v1/config", key, {"tools": {"base_url": "http://10.0.0.8/tools"}})
    assert (response.status_code, paths_of(response)) == (422, ["tools.base_url"])
    accepted = api.call("PUT", "/v1/config", key, {"tools": {"base_url": "https://tools.example.com"}})
    assert accepted.status_code == 200
