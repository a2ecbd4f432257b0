"""Tenants and their API keys."""

from __future__ import annotations

from pydantic import Field

from chalicelib.domain.base import Model


class Tenant(Model):
    tenant_id: str
    name: str = Field(min_length=1, max_length=200)
    created_at: str = ""


class ApiKey(Model):
    """A tenant's key as stored: only the hash of the secret, never the secret."""

    key_id: str
    tenant_id: str
    key_hash: str
    created_at: str = ""
    revoked: bool = False
