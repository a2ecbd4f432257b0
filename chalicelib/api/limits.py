"""Per-tenant rate limit of tenant-authenticated requests: 429 `rate_limited` with Retry-After.

The limit is `rate_limit.requests_per_minute` of the tenant config layer over the platform's
(domain/config.py; only those two layers may set it). The resolved limit is cached per container
for LIMIT_CACHE_S, so a warm request costs one counter round trip (Redis, DynamoDB while Redis is
down; stores/rate_limit.py) and no config read; a tenant's PUT /v1/config is seen at once on its
container. The platform admin key is not counted (it names no tenant). When the counter store is
unreachable the request goes through: an outage of the limiter must not become an outage of the API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chalicelib.config.resolver import resolve
from chalicelib.domain.config import Layer
from chalicelib.domain.errors import RateLimited, Unavailable
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services

LIMIT_CACHE_S = 30.0


class RateGate:
    """Counts each tenant request against its per-minute limit. `clock` gives the wall time (s)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._limits: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def check(self, svc: Services, tenant_id: str) -> None:
        """Return when the request may go on. Raises RateLimited (details.retry_after_s)."""
        limit = self.limit_for(svc, tenant_id)
        try:
            decision = svc.rate_limiter.check(tenant_id, limit, self.clock())
        except Unavailable:
            logger.warning("rate limiter unavailable: request allowed", extra={"tenant_id": tenant_id})
            return
        if not decision.allowed:
            raise RateLimited(f"more than {limit} requests in a minute; retry later",
                              retry_after_s=decision.retry_after_s, limit_per_minute=limit)

    def limit_for(self, svc: Services, tenant_id: str) -> int:
        now = time.monotonic()
        with self._lock:
            cached = self._limits.get(tenant_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        layers = [(Layer.PLATFORM, svc.settings.platform_layer),
                  (Layer.TENANT, svc.config_store.get_tenant_layer(tenant_id))]
        limit = resolve(layers).config.rate_limit.requests_per_minute
        with self._lock:
            if len(self._limits) > 10_000:
                self._limits.clear()
            self._limits[tenant_id] = (limit, now + LIMIT_CACHE_S)
        return limit

    def forget(self, tenant_id: str) -> None:
        """Drop the cached limit (the tenant's config layer changed)."""
        with self._lock:
            self._limits.pop(tenant_id, None)


RATE_GATE = RateGate()
