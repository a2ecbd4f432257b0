"""Tenant administration: tenants (admin key), the tenant config layer, API keys and secrets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.auth import KEY_CACHE
from chalicelib.api.pagination import PageRequest
from chalicelib.api.views import KeyCreated, KeyPage, TenantCreated
from chalicelib.config.ceilings import ceiling_problems
from chalicelib.config.key_policy import platform_key_problems
from chalicelib.domain.config import Layer, validate_layer
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.ids import is_valid_id, new_id, now_iso
from chalicelib.domain.tenant import Tenant, issue_api_key
from chalicelib.providers.network import check_url
from chalicelib.runtime.ingest import forget_all_bindings
from chalicelib.runtime.limits import RATE_GATE
from chalicelib.runtime.services import Services


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=200)


class SecretPut(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    value: str = Field(min_length=1, max_length=4096, repr=False)


def create_tenant(services: Services, body: TenantCreate) -> TenantCreated:
    """A new tenant and its first API key (shown once)."""
    tenant_id = new_id("ten")
    services.tenants.create(Tenant(tenant_id=tenant_id, name=body.name, created_at=now_iso()))
    secret, api_key = issue_api_key(tenant_id)
    services.tenants.add_key(api_key)
    return TenantCreated(tenant_id=tenant_id, api_key=secret, key_id=api_key.key_id)


def delete_tenant(services: Services, tenant_id: str) -> None:
    """Erase the tenant and all its data; its keys stop working at once here. Raises NotFound."""
    if services.tenants.get(tenant_id) is None:
        raise NotFound("no such tenant", tenant_id=tenant_id)
    services.tenants.delete(tenant_id)
    services.idempotency_index.erase_tenant(tenant_id)  # the stored answers of its retried turns
    KEY_CACHE.clear()
    forget_all_bindings()  # its webhooks stop at once here; elsewhere within ingest.BINDING_CACHE_S


def put_config(services: Services, tenant_id: str, layer: object) -> dict[str, Any]:
    """Validate and store the tenant config layer (unknown keys, restricted keys, types, URLs, values
    above a platform ceiling -> 422)."""
    problems = [(path.lstrip("."), message) for path, message in validate_layer(layer, Layer.TENANT, "")]
    problems = problems or ceiling_problems(layer, services.platform_config)  # lower, never raise
    if problems:
        raise InvalidInput.many(problems)
    if not isinstance(layer, dict):  # validate_layer reported it; this narrows the type
        raise InvalidInput.at("", "a config layer must be an object")
    problems = platform_key_problems(layer, "", services.platform_config)
    for section in ("llm", "tools"):  # outbound URLs: refused on private addresses unless allowed
        base_url = (layer.get(section) or {}).get("base_url")
        if not isinstance(base_url, str):
            continue
        try:
            check_url(
                base_url, services.platform_config.network.allow_private, at_publish=True, path=f"{section}.base_url"
            )
        except InvalidInput as exc:
            problems = [(error["path"], error["message"]) for error in exc.details["errors"]] + problems
    if problems:
        raise InvalidInput.many(problems)
    services.config_store.put_tenant_layer(tenant_id, layer)
    RATE_GATE.forget(tenant_id)  # a new rate_limit.requests_per_minute applies at once here
    return layer


def get_config(services: Services, tenant_id: str) -> dict[str, Any]:
    return services.config_store.get_tenant_layer(tenant_id)


def create_key(services: Services, tenant_id: str) -> KeyCreated:
    """A new key for the caller's tenant (the secret is shown once)."""
    secret, api_key = issue_api_key(tenant_id)
    services.tenants.add_key(api_key)
    return KeyCreated(key_id=api_key.key_id, api_key=secret, created_at=api_key.created_at)


def list_keys(services: Services, tenant_id: str, page: PageRequest) -> KeyPage:
    return KeyPage.of(services.tenants.list_keys(tenant_id), page)


def revoke_key(services: Services, tenant_id: str, key_id: str) -> None:
    """Revoke at once (this container forgets its cached keys). Raises NotFound."""
    if not services.tenants.revoke_key(tenant_id, key_id):
        raise NotFound("no such key", key_id=key_id)
    KEY_CACHE.clear()


def put_secret(services: Services, tenant_id: str, name: str, body: SecretPut) -> None:
    """Store a tenant secret; write-only (no route returns it)."""
    if not is_valid_id(name):
        raise InvalidInput.at("name", "letters, digits, _ . - (at most 64)")
    services.secrets.put(tenant_id, name, body.value)


__all__ = [
    "SecretPut",
    "TenantCreate",
    "create_key",
    "create_tenant",
    "delete_tenant",
    "get_config",
    "list_keys",
    "put_config",
    "put_secret",
    "revoke_key",
]
