"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import secrets

from pydantic import Field

from chalicelib.domain.base import Model
from chalicelib.domain.ids import new_id, now_iso


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


API_KEY_PREFIX = "rk_"


def hash_api_key(secret: str) -> str:
    """The sha256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key(tenant_id: str) -> tuple[str, ApiKey]:
    """A new key: the secret `rk_<random>` (shown once, never stored) and the ApiKey to store."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, ApiKey(
        key_id=new_id("key"), tenant_id=tenant_id, key_hash=hash_api_key(secret), created_at=now_iso()
    )
