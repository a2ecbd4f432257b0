"""Agent routes: publish (JSON, YAML), read, versions, rollback, delete, list, items, resolved config."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.api.harness import Api, a_bundle, error_of, paths_of


def test_a_published_bundle_reads_back_with_its_version(api: Api) -> None:
    _, key = api.new_tenant()
    response = api.call("PUT", "/v1/agents/support", key, a_bundle())
    assert (response.status_code, response.json_body) == (200, {"agent_id": "support", "version": 1})
    fetched = api.call("GET", "/v1/agents/support", key)
    assert fetched.headers["ETag"] == '"1"'
    assert fetched.json_body["rules"][0]["id"] == "refunds"
    assert fetched.json_body["agent"]["name"] == "Support"


def test_a_yaml_bundle_is_accepted(api: Api) -> None:
    _, key = api.new_tenant()
    response = api.call(
        "PUT", "/v1/agents/support", key, raw=yaml.safe_dump(a_bundle()), content_type="application/yaml"
    )
    assert response.status_code == 200
    assert api.call("GET", "/v1/agents/support", key).json_body["tools"][0]["id"] == "lookup"


def test_the_source_of_a_yaml_publish_is_kept_with_its_comments_and_survives_a_rollback(api: Api) -> None:
    _, key = api.new_tenant()
    written = "# our support agent\n" + yaml.safe_dump(a_bundle())
    api.call("PUT", "/v1/agents/support", key, raw=written, content_type="application/yaml")
    api.call("PUT", "/v1/agents/support", key, a_bundle(agent={"name": "JSON edition"}))

    first = api.call("GET", "/v1/agents/support?format=source&version=1", key).json_body
    second = api.call("GET", "/v1/agents/support?format=source", key).json_body
    api.call("POST", "/v1/agents/support/rollback", key, {"version": 1})
    rolled_back = api.call("GET", "/v1/agents/support?format=source", key).json_body

    assert (first["version"], first["format"], first["text"]) == (1, "yaml", written)
    assert "#" not in second["text"] and yaml.safe_load(second["text"])["agent"]["name"] == "JSON edition"
    assert (rolled_back["version"], rolled_back["text"]) == (3, written)


@pytest.mark.parametrize(
    ("raw", "content_type"), [('{"agent": ', "application/json"), ("agent: [1, 2", "application/yaml")]
)
def test_malformed_json_or_yaml_is_400_and_writes_nothing(api: Api, raw: str, content_type: str) -> None:
    tenant_id, key = api.new_tenant()
    response = api.call("PUT", "/v1/agents/support", key, raw=raw, content_type=content_type)
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_json")
    assert api.services.bundles.latest_version(tenant_id, "support") is None


def test_wrong_types_are_422_with_every_path(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    bundle = a_bundle(
        rules=[{"id": "r", "condition": "c", "action": "a", "priority": "high"}],
        tools=[{"id": "t", "url": "https://example.com", "timeout_s": "slow"}],
    )
    response = api.call("PUT", "/v1/agents/support", key, bundle)
    assert response.status_code == 422
    assert {"rules[0].priority", "tools[0].timeout_s"} <= set(paths_of(response))
    assert api.services.bundles.latest_version(tenant_id, "support") is None


def test_an_unknown_reference_is_422_at_its_path_and_nothing_is_written(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    bundle = a_bundle()
    bundle["rules"][0]["templates"] = ["missing"]
    response = api.call("PUT", "/v1/agents/support", key, bundle)
    assert (response.status_code, paths_of(response)) == (422, ["rules[0].templates[0]"])
    assert api.services.bundles.latest_version(tenant_id, "support") is None


def test_a_tool_or_llm_url_on_a_private_address_is_refused_at_publish(api: Api) -> None:
    _, key = api.new_tenant()
    bundle = a_bundle()
    bundle["tools"][0]["url"] = "http://169.254.169.254/latest/meta-data"
    bundle["scenarios"][0]["steps"][0]["config"] = {"llm": {"base_url": "http://127.0.0.1:11434/v1"}}
    response = api.call("PUT", "/v1/agents/support", key, bundle)
    assert response.status_code == 422
    assert sorted(paths_of(response)) == ["scenarios[0].steps[0].config.llm.base_url", "tools[0].url"]


def test_private_urls_pass_when_the_platform_allows_them(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.runtime.services import reset_services, services

    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")
    reset_services()
    api.services = services()
    _, key = api.new_tenant()
    bundle = a_bundle()
    bundle["tools"][0]["url"] = "http://127.0.0.1:9/tool"
    assert api.call("PUT", "/v1/agents/support", key, bundle).status_code == 200


def test_a_body_over_the_limit_is_413_and_writes_nothing(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.runtime.services import reset_services, services

    tenant_id, key = api.new_tenant()
    monkeypatch.setenv("RUCHE_MAX_BODY_BYTES", "200")
    reset_services()
    services()
    response = api.call("PUT", "/v1/agents/support", key, a_bundle())
    assert (response.status_code, error_of(response)["code"]) == (413, "payload_too_large")
    assert services().bundles.latest_version(tenant_id, "support") is None


def test_a_stale_if_match_is_409_and_a_current_one_publishes(api: Api) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    api.call("PUT", "/v1/agents/support", key, a_bundle(), headers={"If-Match": '"1"'})
    stale = api.call("PUT", "/v1/agents/support", key, a_bundle(), headers={"If-Match": '"1"'})
    assert (stale.status_code, error_of(stale)["code"]) == (409, "conflict")
    assert api.call("GET", "/v1/agents/support", key).headers["ETag"] == '"2"'
    bad = api.call("PUT", "/v1/agents/support", key, a_bundle(), headers={"If-Match": "yesterday"})
    assert (bad.status_code, paths_of(bad)) == (422, ["If-Match"])


def test_another_tenants_agent_answers_404_everywhere(api: Api) -> None:
    _, key = api.new_tenant("a")
    _, other = api.new_tenant("b")
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    for method, path in [
        ("GET", "/v1/agents/support"),
        ("GET", "/v1/agents/support/versions"),
        ("DELETE", "/v1/agents/support"),
        ("GET", "/v1/agents/support/rules/refunds"),
        ("GET", "/v1/agents/support/config/resolved"),
        ("GET", "/v1/agents/support/channels"),
    ]:
        response = api.call(method, path, other)
        assert (response.status_code, error_of(response)["code"]) == (404, "not_found"), path
    assert api.call("GET", "/v1/agents", other).json_body == {"agents": [], "next_cursor": None}
    assert api.call("GET", "/v1/agents/support", key).status_code == 200


def test_versions_rollback_and_older_versions(api: Api) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    changed = a_bundle(agent={"name": "Support v2"})
    api.call("PUT", "/v1/agents/support", key, changed)
    history = api.call("GET", "/v1/agents/support/versions", key).json_body
    assert [item["version"] for item in history["versions"]] == [1, 2]
    assert api.call("GET", "/v1/agents/support?version=1", key).json_body["agent"]["name"] == "Support"
    rolled = api.call("POST", "/v1/agents/support/rollback", key, {"version": 1})
    assert rolled.json_body == {"agent_id": "support", "version": 3}
    assert api.call("GET", "/v1/agents/support", key).json_body["agent"]["name"] == "Support"
    assert api.call("POST", "/v1/agents/support/rollback", key, {"version": 9}).status_code == 404
    assert api.call("POST", "/v1/agents/support/rollback", key, {"version": 0}).status_code == 422
    assert api.call("GET", "/v1/agents/support?version=x", key).status_code == 422
    assert api.call("GET", "/v1/agents/support?version=7", key).status_code == 404


def test_listing_and_deleting_agents(api: Api) -> None:
    _, key = api.new_tenant()
    for agent_id in ("a1", "a2", "a3"):
        api.call("PUT", f"/v1/agents/{agent_id}", key, a_bundle())
    first = api.call("GET", "/v1/agents?limit=2", key).json_body
    assert [item["agent_id"] for item in first["agents"]] == ["a1", "a2"]
    rest = api.call("GET", f"/v1/agents?limit=2&cursor={first['next_cursor']}", key).json_body
    assert rest == {"agents": [{"agent_id": "a3", "version": 1}], "next_cursor": None}
    assert api.call("DELETE", "/v1/agents/a2", key).status_code == 204
    assert api.call("GET", "/v1/agents/a2", key).status_code == 404
    assert api.call("DELETE", "/v1/agents/a2", key).status_code == 404
    assert api.call("PUT", "/v1/agents/bad%20id", key, a_bundle()).status_code == 422


def test_item_put_creates_then_replaces_and_publishes_each_time(api: Api) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    rule = {"condition": "the user is angry", "action": "apologise", "templates": ["sorry"]}
    created = api.call("PUT", "/v1/agents/support/rules/angry", key, rule)
    assert created.json_body == {"agent_id": "support", "version": 2}
    assert api.call("GET", "/v1/agents/support/rules/angry", key).json_body["action"] == "apologise"
    api.call("PUT", "/v1/agents/support/rules/angry", key, {**rule, "action": "calm them"})
    assert api.call("GET", "/v1/agents/support/rules/angry", key).json_body["action"] == "calm them"
    rules = api.call("GET", "/v1/agents/support", key).json_body["rules"]
    assert [item["id"] for item in rules] == ["refunds", "angry"]
    field = api.call(
        "PUT", "/v1/agents/support/fields/phone", key, raw="type: phone\n", content_type="application/yaml"
    )
    assert field.json_body["version"] == 4
    assert api.call("GET", "/v1/agents/support/fields/phone", key).json_body == {
        "name": "phone",
        "type": "phone",
    }


def test_item_errors_carry_whole_bundle_paths_and_write_nothing(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    broken = api.call(
        "PUT", "/v1/agents/support/rules/x", key, {"condition": "c", "action": "a", "tools": ["nope"]}
    )
    assert (broken.status_code, paths_of(broken)) == (422, ["rules[1].tools[0]"])
    mismatch = api.call(
        "PUT", "/v1/agents/support/rules/x", key, {"id": "y", "condition": "c", "action": "a"}
    )
    assert paths_of(mismatch) == ["id"]
    assert api.call("PUT", "/v1/agents/support/rules/x", key, [1]).status_code == 422
    assert api.call("PUT", "/v1/agents/support/widgets/x", key, {"a": 1}).status_code == 404
    assert (
        api.call("PUT", "/v1/agents/nobody/rules/x", key, {"condition": "c", "action": "a"}).status_code
        == 404
    )
    assert api.services.bundles.latest_version(tenant_id, "support") == 1


def test_deleting_a_referenced_item_is_422_with_the_referring_path(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    response = api.call("DELETE", "/v1/agents/support/templates/greet", key)
    assert (response.status_code, paths_of(response)) == (422, ["rules[0].templates[0]"])
    assert api.services.bundles.latest_version(tenant_id, "support") == 1
    deleted = api.call("DELETE", "/v1/agents/support/templates/sorry", key)
    assert deleted.json_body == {"agent_id": "support", "version": 2}
    assert api.call("GET", "/v1/agents/support/templates/sorry", key).status_code == 404
    assert api.call("DELETE", "/v1/agents/support/templates/sorry", key).status_code == 404


def test_item_if_match_guards_against_lost_updates(api: Api) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    stale = api.call("DELETE", "/v1/agents/support/templates/sorry", key, headers={"If-Match": "1"})
    assert stale.status_code == 409


def test_the_resolved_config_reports_each_keys_layer(api: Api) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/config", key, {"llm": {"max_tokens": 321}})
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    response = api.call(
        "GET", "/v1/agents/support/config/resolved?channel=webchat&scenario=returns&step=ask", key
    )
    body = response.json_body
    assert body["config"]["llm"]["max_tokens"] == 321
    assert body["provenance"]["llm.max_tokens"] == "tenant"
    assert body["provenance"]["response.max_length"] == "agent"
    assert body["provenance"]["response.format"] == "channel"
    assert body["provenance"]["llm.temperature"] == "scenario"
    assert body["provenance"]["enforcement.max_regeneration_attempts"] == "step"
    assert body["provenance"]["retrieval.max_rules"] == "platform"
    plain = api.call("GET", "/v1/agents/support/config/resolved", key).json_body
    assert plain["provenance"]["response.format"] == "platform"
    api.call("PUT", "/v1/config", key, {"llm": {"max_tokens": 123}})
    again = api.call("GET", "/v1/agents/support/config/resolved", key).json_body
    assert again["config"]["llm"]["max_tokens"] == 123  # a config change shows at once


@pytest.mark.parametrize(
    ("query", "status"),
    [("channel=fax", 422), ("scenario=nope", 404), ("scenario=returns&step=nope", 404), ("step=ask", 422)],
)
def test_the_resolved_config_of_an_unknown_position_is_refused(api: Api, query: str, status: int) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    assert api.call("GET", f"/v1/agents/support/config/resolved?{query}", key).status_code == status


def test_published_bundles_carry_rule_and_scenario_embeddings(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    published = api.services.bundles.load(tenant_id, "support")
    assert published is not None
    assert set(published.vectors) == {"rule:refunds", "scenario:returns"}
    assert published.embedding_model
    assert json.dumps(published.vectors)  # plain floats
