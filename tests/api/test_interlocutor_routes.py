"""Interlocutor routes: persistent fields, validated PATCH, history, erasure."""

from __future__ import annotations

from chalicelib.domain.ids import now_s
from chalicelib.domain.interlocutor import FieldChange, ValueSource
from tests.api.harness import Api, a_bundle, paths_of


def interlocutor(api: Api) -> tuple[str, str, str]:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    interlocutor_id = api.services.interlocutors.resolve(tenant_id, "api", "u1")
    return tenant_id, key, f"/v1/agents/support/interlocutors/{interlocutor_id}"


def test_patch_sets_persistent_fields_and_get_shows_them_with_their_source(api: Api) -> None:
    _, key, path = interlocutor(api)
    response = api.call("PATCH", path, key, {"fields": {"email": "Ana@Example.com", "order_id": "A-1"}})
    assert response.status_code == 200
    fields = api.call("GET", path, key).json_body["fields"]
    assert fields["email"]["value"] == "Ana@Example.com"
    assert (fields["order_id"]["source"], fields["order_id"]["status"]) == ("api", "active")
    assert fields["order_id"]["updated_at"]


def test_patch_reports_every_rejected_field_at_once_and_writes_nothing(api: Api) -> None:
    tenant_id, key, path = interlocutor(api)
    body = {
        "fields": {
            "email": "not-an-email-secret",
            "mood": "happy",
            "tier": "gold",
            "nope": 1,
            "order_id": "ok",
        }
    }
    response = api.call("PATCH", path, key, body)
    assert response.status_code == 422
    assert sorted(paths_of(response)) == ["fields.email", "fields.mood", "fields.nope", "fields.tier"]
    assert "not-an-email-secret" not in response.body.decode()
    assert api.call("GET", path, key).json_body["fields"] == {}
    assert paths_of(api.call("PATCH", path, key, {"values": {}})) == ["fields", "values"]
    assert tenant_id


def test_history_shows_superseded_values(api: Api) -> None:
    _, key, path = interlocutor(api)
    api.call("PATCH", path, key, {"fields": {"order_id": "A-1"}})
    api.call("PATCH", path, key, {"fields": {"order_id": "A-2"}})
    body = api.call("GET", f"{path}?history=true", key).json_body
    assert body["fields"]["order_id"]["value"] == "A-2"
    statuses = sorted(
        (item["value"], item["status"]) for item in body["history"] if item["name"] == "order_id"
    )
    assert statuses == [("A-1", "superseded"), ("A-2", "active")]
    assert "history" not in api.call("GET", path, key).json_body


def test_get_shows_only_the_agents_persistent_fields(api: Api) -> None:
    tenant_id, key, path = interlocutor(api)
    interlocutor_id = path.rsplit("/", 1)[1]
    api.services.interlocutors.write(
        tenant_id,
        interlocutor_id,
        [
            FieldChange(name="order_id", value="A-9", source=ValueSource.TOOL),
            FieldChange(name="legacy", value="x", source=ValueSource.TOOL),
        ],
        now_s(),
    )
    body = api.call("GET", path, key).json_body
    assert set(body["fields"]) == {"order_id"}
    assert body["identities"] == [{"channel": "api", "user_id": "u1"}]


def test_delete_erases_the_interlocutor_and_it_then_answers_404(api: Api) -> None:
    _, key, path = interlocutor(api)
    api.call("PATCH", path, key, {"fields": {"order_id": "A-1"}})
    assert api.call("DELETE", path, key).status_code == 204
    assert api.call("GET", path, key).status_code == 404
    assert api.call("DELETE", path, key).status_code == 404
    assert api.call("PATCH", path, key, {"fields": {"order_id": "A-2"}}).status_code == 404


def test_another_tenants_interlocutor_is_404(api: Api) -> None:
    _, _, path = interlocutor(api)
    _, other = api.new_tenant("other")
    api.call("PUT", "/v1/agents/support", other, a_bundle())
    assert api.call("GET", path, other).status_code == 404
    assert api.call("PATCH", path, other, {"fields": {"order_id": "x"}}).status_code == 404
    assert api.call("DELETE", path, other).status_code == 404
