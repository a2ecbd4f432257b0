"""Channel binding routes: server-issued ids, write-only secrets, required secrets, webhook URLs."""

from __future__ import annotations

from chalicelib.api.channels import base_url
from tests.api.harness import Api, a_bundle, error_of, paths_of

TWILIO = {
    "channel": "twilio",
    "secrets": {"account_sid": "AC123", "auth_token": "tok-secret"},
    "config": {"from": "+15550001"},
}


def agent_with_key(api: Api) -> tuple[str, str]:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    return tenant_id, key


def test_a_binding_is_created_with_an_unguessable_id_and_its_webhook_url(api: Api) -> None:
    _, key = agent_with_key(api)
    response = api.call(
        "POST", "/v1/agents/support/channels", key, TWILIO, headers={"Host": "api.example.com"}
    )
    assert response.status_code == 201
    binding_id = response.json_body["binding_id"]
    assert binding_id.startswith("bnd_") and len(binding_id) > 30
    assert response.json_body["webhook_url"] == f"https://api.example.com/v1/webhooks/twilio/{binding_id}"


def test_a_binding_reads_back_without_its_secrets(api: Api) -> None:
    _, key = agent_with_key(api)
    binding_id = api.call("POST", "/v1/agents/support/channels", key, TWILIO).json_body["binding_id"]
    response = api.call("GET", f"/v1/agents/support/channels/{binding_id}", key)
    assert response.json_body["secrets"] == ["account_sid", "auth_token"]
    assert "tok-secret" not in response.body.decode()
    listed = api.call("GET", "/v1/agents/support/channels", key)
    assert [item["binding_id"] for item in listed.json_body["channels"]] == [binding_id]
    assert "tok-secret" not in listed.body.decode()


def test_missing_and_unknown_secrets_are_all_reported_and_nothing_is_written(api: Api) -> None:
    tenant_id, key = agent_with_key(api)
    body = {
        "channel": "whatsapp",
        "secrets": {"app_secret": "x", "colour": "red"},
        "api_base_url": "http://10.0.0.1/graph",
    }
    response = api.call("POST", "/v1/agents/support/channels", key, body)
    assert response.status_code == 422
    assert sorted(paths_of(response)) == [
        "api_base_url",
        "secrets.access_token",
        "secrets.colour",
        "secrets.phone_number_id",
        "secrets.verify_token",
    ]
    assert api.services.bindings.list(tenant_id, "support") == []
    api_channel = api.call("POST", "/v1/agents/support/channels", key, {"channel": "api"})
    assert paths_of(api_channel) == ["channel"]
    assert paths_of(api.call("POST", "/v1/agents/support/channels", key, {"channel": "fax"})) == ["channel"]


def test_updating_a_binding_merges_secrets_and_keeps_its_channel(api: Api) -> None:
    tenant_id, key = agent_with_key(api)
    binding_id = api.call("POST", "/v1/agents/support/channels", key, TWILIO).json_body["binding_id"]
    path = f"/v1/agents/support/channels/{binding_id}"
    response = api.call("PUT", path, key, {"secrets": {"auth_token": "rotated"}, "config": {"from": "+1555"}})
    assert response.status_code == 200 and response.json_body["config"] == {"from": "+1555"}
    stored = api.services.bindings.get(binding_id)
    assert stored is not None and stored.secrets == {"account_sid": "AC123", "auth_token": "rotated"}
    assert paths_of(api.call("PUT", path, key, {"channel": "slack"})) == ["channel"]
    assert api.call("PUT", path, key, {"api_base_url": None}).status_code == 200
    assert api.services.bindings.get(binding_id).secrets["auth_token"] == "rotated"  # type: ignore[union-attr]
    assert tenant_id


def test_another_tenants_or_agents_binding_is_404_and_delete_removes_it(api: Api) -> None:
    _, key = agent_with_key(api)
    _, other = agent_with_key(api)
    binding_id = api.call("POST", "/v1/agents/support/channels", key, TWILIO).json_body["binding_id"]
    path = f"/v1/agents/support/channels/{binding_id}"
    for method in ("GET", "DELETE"):
        assert error_of(api.call(method, path, other))["code"] == "not_found"
    assert api.call("PUT", path, other, {"config": {}}).status_code == 404
    api.call("PUT", "/v1/agents/second", key, a_bundle())
    assert api.call("GET", f"/v1/agents/second/channels/{binding_id}", key).status_code == 404
    assert api.call("POST", "/v1/agents/nobody/channels", key, TWILIO).status_code == 404
    assert api.call("DELETE", path, key).status_code == 204
    assert api.call("GET", path, key).status_code == 404
    assert api.services.bindings.get(binding_id) is None


def test_the_webhook_base_url_follows_the_request() -> None:
    assert base_url({"host": "localhost:8000"}, {}) == "http://localhost:8000"
    assert base_url({"host": "abc.execute-api.eu-west-1.amazonaws.com"}, {"stage": "api"}) == (
        "https://abc.execute-api.eu-west-1.amazonaws.com/api"
    )
    assert base_url({"host": "x.io", "x-forwarded-proto": "http"}, {"stage": "api"}) == "http://x.io"
