"""Who is calling: a tenant API key names its tenant; the platform admin key names no tenant.

`Authorization: Bearer <key>`. A tenant key is looked up by its sha256 (TenantStore.find_key) and
the answer is cached in this container for at most KEY_CACHE_TTL_S = 5 seconds, so a warm request
costs no DynamoDB read (DESIGN.md §7). The bound: a key revoked on another container keeps working
here for at most 5 s; on the container that revoked it, at once (revoking clears this cache).
Unknown keys are never cached (a flood of random keys cannot fill the cache, and a new key works
at once). The admin key (env RUCHE_ADMIN_KEY) is compared in constant time and is no tenant key.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.tenant import hash_api_key
from chalicelib.stores.ports import TenantStore

KEY_CACHE_TTL_S = 5.0
_MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated tenant of a request."""

    tenant_id: str
    key_id: str


class KeyCache:
    """key hash -> Caller, each entry kept at most `ttl_s` seconds; bounded LRU."""

    def __init__(self, ttl_s: float = KEY_CACHE_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s, self._clock = ttl_s, clock
        self._entries: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Caller | None:
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None:
                return None
            if entry[1] <= self._clock():
                del self._entries[key_hash]
                return None
            return entry[0]

    def put(self, key_hash: str, caller: Caller) -> None:
        with self._lock:
            self._entries[key_hash] = (caller, self._clock() + self._ttl_s)
            self._entries.move_to_end(key_hash)
            while len(self._entries) > _MAX_CACHED_KEYS:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


KEY_CACHE = KeyCache()


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of `Authorization: Bearer <token>`. Raises Unauthorized when absent or malformed."""
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing or malformed `Authorization: Bearer <key>` header")
    return token.strip()


def authenticate(headers: Mapping[str, str], tenants: TenantStore, cache: KeyCache = KEY_CACHE) -> Caller:
    """The tenant whose live key the request carries. Raises Unauthorized otherwise."""
    key_hash = hash_api_key(bearer_token(headers))
    cached = cache.get(key_hash)
    if cached is not None:
        return cached
    api_key = tenants.find_key(key_hash)
    if api_key is None or api_key.revoked:
        raise Unauthorized("unknown or revoked API key")
    caller = Caller(tenant_id=api_key.tenant_id, key_id=api_key.key_id)
    cache.put(key_hash, caller)
    return caller


def authenticate_admin(headers: Mapping[str, str], admin_key: str | None) -> None:
    """Return when the request carries the platform admin key. Raises Unauthorized otherwise
    (also when no admin key is configured: admin routes are then closed)."""
    token = bearer_token(headers)
    if not admin_key or not hmac.compare_digest(token.encode(), admin_key.encode()):
        raise Unauthorized("this route needs the platform admin key")
