"""Authentication: tenant keys (cached at most 5 s per container), the admin key, 401s."""

from __future__ import annotations

import pytest

from chalicelib.api.auth import KEY_CACHE_TTL_S, KeyCache, authenticate, authenticate_admin, bearer_token
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.tenant import hash_api_key
from tests.api.harness import ADMIN_KEY, Api, error_of


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "header", [{}, {"Authorization": ""}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}]
)
def test_a_missing_or_malformed_authorization_header_is_unauthorized(header: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_the_admin_key_is_compared_and_required() -> None:
    authenticate_admin({"authorization": "Bearer s3cret"}, "s3cret")
    with pytest.raises(Unauthorized):
        authenticate_admin({"authorization": "Bearer s3cre"}, "s3cret")
    with pytest.raises(Unauthorized):  # no admin key configured: admin routes are closed
        authenticate_admin({"authorization": "Bearer "}, None)
    with pytest.raises(Unauthorized):
        authenticate_admin({"authorization": "Bearer anything"}, None)


def test_routes_answer_401_in_the_envelope_without_or_with_a_wrong_key(api: Api) -> None:
    for key in (None, "rk_not-a-key"):
        response = api.call("GET", "/v1/agents", key)
        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthorized"


def test_the_admin_key_is_no_tenant_key_and_a_tenant_key_is_no_admin_key(api: Api) -> None:
    _, key = api.new_tenant()
    assert api.call("GET", "/v1/config", ADMIN_KEY).status_code == 401
    assert api.call("POST", "/v1/tenants", key, {"name": "sneaky"}).status_code == 401


def test_a_key_revoked_through_the_api_fails_at_once_on_this_container(api: Api) -> None:
    _, key = api.new_tenant()
    second = api.call("POST", "/v1/keys", key).json_body
    assert api.call("GET", "/v1/agents", second["api_key"]).status_code == 200  # now cached
    assert api.call("DELETE", f"/v1/keys/{second['key_id']}", key).status_code == 204
    assert api.call("GET", "/v1/agents", second["api_key"]).status_code == 401
    assert api.call("GET", "/v1/agents", key).status_code == 200


def test_a_key_revoked_elsewhere_keeps_working_here_for_at_most_the_cache_bound(api: Api) -> None:
    tenant_id, key = api.new_tenant()
    clock = FakeClock()
    cache = KeyCache(clock=clock)
    tenants = api.services.tenants
    assert authenticate({"authorization": f"Bearer {key}"}, tenants, cache).tenant_id == tenant_id
    key_id = tenants.find_key(hash_api_key(key)).key_id  # type: ignore[union-attr]
    tenants.revoke_key(tenant_id, key_id)  # another container revokes it: this cache is not told
    clock.now += KEY_CACHE_TTL_S - 0.5
    assert authenticate({"authorization": f"Bearer {key}"}, tenants, cache).tenant_id == tenant_id
    clock.now += 0.5
    with pytest.raises(Unauthorized):
        authenticate({"authorization": f"Bearer {key}"}, tenants, cache)


def test_unknown_keys_are_not_cached_so_a_new_key_works_at_once(api: Api) -> None:
    cache = KeyCache(clock=FakeClock())
    with pytest.raises(Unauthorized):
        authenticate({"authorization": "Bearer rk_unknown"}, api.services.tenants, cache)
    assert cache.get(hash_api_key("rk_unknown")) is None
