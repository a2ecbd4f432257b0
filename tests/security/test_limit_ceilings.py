"""A tenant tries to raise the platform's limits through its config layer: 422, and never honoured."""

from __future__ import annotations

import pytest

from chalicelib.runtime.limits import RATE_GATE
from chalicelib.runtime.services import reset_services, services
from tests.api.harness import Api, a_bundle, api, error_of, paths_of

__all__ = ["api"]


def test_raising_the_tenant_rate_limit_past_the_platform_ceiling_is_422_and_nothing_is_stored(api: Api) -> None:
    _, key = api.new_tenant()
    response = api.call("PUT", "/v1/config", key, {"rate_limit": {"requests_per_minute": 2_000_000_000}})
    assert response.status_code == 422 and error_of(response)["code"] == "invalid_input"
    assert paths_of(response) == ["rate_limit.requests_per_minute"]
    assert "600" in error_of(response)["details"]["errors"][0]["message"]
    assert api.call("GET", "/v1/config", key).json_body == {}


def test_every_public_limit_past_its_ceiling_is_reported_at_once(api: Api) -> None:
    _, key = api.new_tenant()
    layer = {"rate_limit": {"binding_per_minute": 301, "visitor_per_minute": 21, "new_visitors_per_minute": 5}}
    response = api.call("PUT", "/v1/config", key, layer)
    assert response.status_code == 422
    assert sorted(paths_of(response)) == ["rate_limit.binding_per_minute", "rate_limit.visitor_per_minute"]
    at_ceiling = {"rate_limit": {"binding_per_minute": 300, "visitor_per_minute": 20, "new_visitors_per_minute": 5}}
    assert api.call("PUT", "/v1/config", key, at_ceiling).status_code == 200


def test_a_tenant_may_lower_every_limit_and_set_a_quota_under_an_unlimited_platform(api: Api) -> None:
    _, key = api.new_tenant()
    layer = {"rate_limit": {"requests_per_minute": 100, "binding_per_minute": 50, "visitor_per_minute": 5,
                            "new_visitors_per_minute": 5},
             "quota": {"monthly_tokens": 1_000_000, "monthly_turns": 10_000}}
    assert api.call("PUT", "/v1/config", key, layer).status_code == 200
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    resolved = api.call("GET", "/v1/agents/support/config/resolved", key).json_body
    assert resolved["config"]["rate_limit"] == layer["rate_limit"]
    assert resolved["config"]["quota"] == layer["quota"]
    assert resolved["provenance"]["quota.monthly_tokens"] == "tenant"


def test_a_quota_past_the_platforms_ceiling_is_422(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUCHE_QUOTA_MONTHLY_TOKENS", "5000000")
    monkeypatch.setenv("RUCHE_QUOTA_MONTHLY_TURNS", "1000")
    reset_services()
    api.services = services()
    _, key = api.new_tenant()
    response = api.call("PUT", "/v1/config", key, {"quota": {"monthly_tokens": 5_000_001, "monthly_turns": 1000}})
    assert response.status_code == 422 and paths_of(response) == ["quota.monthly_tokens"]
    assert api.call("PUT", "/v1/config", key, {"quota": {"monthly_tokens": 10}}).status_code == 200


def test_the_platform_lowers_a_limit_by_environment_and_a_higher_stored_tenant_value_is_ignored(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/config", key, {"rate_limit": {"requests_per_minute": 500}}).status_code == 200
    monkeypatch.setenv("RUCHE_RATE_LIMIT_REQUESTS_PER_MINUTE", "100")  # the platform lowers its ceiling
    reset_services()
    api.services = services()
    RATE_GATE.forget(tenant_id)
    assert RATE_GATE.limit_for(api.services, tenant_id) == 100
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    resolved = api.call("GET", "/v1/agents/support/config/resolved", key).json_body
    assert resolved["config"]["rate_limit"]["requests_per_minute"] == 100
    assert resolved["provenance"]["rate_limit.requests_per_minute"] == "platform"

