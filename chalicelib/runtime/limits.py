"""Rate limits: per tenant on every tenant request, and per binding and visitor on public endpoints.

Tenant requests count against `rate_limit.requests_per_minute`. Public posts (signed provider
webhooks, webchat) count against, most specific first: the visitor's `visitor_per_minute` (a
webchat visitor token, or the channel user of a provider message; hashed, never kept in clear) or,
for a webchat post without a visitor token, the binding's `new_visitors_per_minute` (each such post
mints a visitor and opens a session); then the binding's `binding_per_minute`; then the tenant's
`requests_per_minute`, the same counter as its API requests. The first counter over its limit
refuses the request with 429 `rate_limited` and Retry-After, before anything is written; the broader
counters are then left untouched, so one noisy visitor cannot use up the binding's budget.

The limits come from the tenant config layer over the platform's, whose values are ceilings
(config/ceilings.py; only those two layers may set them). They are cached per container for
LIMIT_CACHE_S, so a warm request costs one counter round trip per counter (Redis, DynamoDB while
Redis is down; stores/rate_limit.py) and no config read; a tenant's PUT /v1/config is seen at once
on its container. The platform admin key is not counted (it names no tenant). When the counter
store is unreachable the request goes through: an outage of the limiter must not become an outage
of the API.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.config.resolver import resolve
from chalicelib.domain.config import Layer, RateLimitConfig
from chalicelib.domain.errors import RateLimited, Unavailable
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services

LIMIT_CACHE_S = 30.0


@dataclass(frozen=True, slots=True)
class Counter:
    scope: str  # the counter's name under the tenant ("" = the tenant's own)
    limit: int
    name: str  # details.scope of the 429: tenant | binding | visitor | new_visitors
    what: str  # for the message: "<limit> <what> in a minute"


class RateGate:
    """Counts each tenant request against its per-minute limit. `clock` gives the wall time (s)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._limits: dict[str, tuple[RateLimitConfig, float]] = {}
        self._lock = threading.Lock()

    def check(self, svc: Services, tenant_id: str) -> None:
        """Return when the request may go on. Raises RateLimited (details.retry_after_s)."""
        limit = self.limit_for(svc, tenant_id)
        self._count(svc, tenant_id, [Counter("", limit, "tenant", "requests")])

    def check_public(self, svc: Services, tenant_id: str, binding_id: str, visitor: str | None) -> None:
        """Count one public post of `visitor` (None: a webchat post that mints a new visitor).

        Raises RateLimited (details.retry_after_s, details.scope) before anything is written.
        """
        limits = self.limits_for(svc, tenant_id)
        if visitor is None:
            first = Counter(f"new:{binding_id}", limits.new_visitors_per_minute, "new_visitors",
                            "posts without a visitor token to this binding")
        else:  # a phone number or a Slack user id: never a Redis key or a DynamoDB key in clear
            digest = hashlib.sha256(f"{binding_id}|{visitor}".encode()).hexdigest()[:24]
            first = Counter(f"vis:{binding_id}:{digest}", limits.visitor_per_minute, "visitor",
                            "posts of this visitor")
        self._count(svc, tenant_id, [
            first,
            Counter(f"bnd:{binding_id}", limits.binding_per_minute, "binding", "posts to this binding"),
            Counter("", limits.requests_per_minute, "tenant", "requests of this tenant"),
        ])

    def _count(self, svc: Services, tenant_id: str, counters: list[Counter]) -> None:
        now = self.clock()
        for counter in counters:
            try:
                decision = svc.rate_limiter.check(tenant_id, counter.limit, now, counter.scope)
            except Unavailable:
                logger.warning("rate limiter unavailable: request allowed", extra={"tenant_id": tenant_id})
                return
            if not decision.allowed:
                raise RateLimited(f"more than {counter.limit} {counter.what} in a minute; retry later",
                                  retry_after_s=decision.retry_after_s, limit_per_minute=counter.limit,
                                  scope=counter.name)

    def limit_for(self, svc: Services, tenant_id: str) -> int:
        return self.limits_for(svc, tenant_id).requests_per_minute

    def limits_for(self, svc: Services, tenant_id: str) -> RateLimitConfig:
        """The tenant's resolved rate limits (within the platform's ceilings), cached LIMIT_CACHE_S."""
        now = time.monotonic()
        with self._lock:
            cached = self._limits.get(tenant_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        layers = [(Layer.PLATFORM, svc.settings.platform_layer),
                  (Layer.TENANT, svc.config_store.get_tenant_layer(tenant_id))]
        limits = resolve(layers).config.rate_limit
        with self._lock:
            if len(self._limits) > 10_000:
                self._limits.clear()
            self._limits[tenant_id] = (limits, now + LIMIT_CACHE_S)
        return limits

    def forget(self, tenant_id: str) -> None:
        """Drop the cached limit (the tenant's config layer changed)."""
        with self._lock:
            self._limits.pop(tenant_id, None)


RATE_GATE = RateGate()
