"""Per-tenant rate limits (and narrower scopes of a tenant: a binding, a visitor): fixed one-minute
windows in Redis, with DynamoDB when Redis is down.

A fixed window counts at most 2x the limit across a window boundary; that is the accepted price
of one round trip per request (DESIGN.md §7 budgets one Redis call for the rate limit).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from aws_lambda_powertools import Logger

from chalicelib.stores.items import TTL_ATTRIBUTE, key, n, number, store_edge, tenant_pk
from chalicelib.stores.ports import RateDecision, RateLimiter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)

WINDOW_S = 60
# Counters outlive their window a little, so a clock skew between containers never resets one early.
_KEEP_S = 2 * WINDOW_S


def _window(now_s: float) -> int:
    return int(now_s // WINDOW_S)


def _decide(count: int, limit_per_minute: int, now_s: float) -> RateDecision:
    if count <= limit_per_minute:
        return RateDecision(allowed=True, retry_after_s=0)
    window_end = (_window(now_s) + 1) * WINDOW_S
    return RateDecision(allowed=False, retry_after_s=max(1, math.ceil(window_end - now_s)))


class RedisRateLimiter:
    """RateLimiter on Redis: INCR and EXPIRE of `rl:<tenant>[:<scope>]:<window>` in one pipelined round trip.

    Raises redis.ConnectionError / redis.TimeoutError when Redis is unreachable.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def check(self, tenant_id: str, limit_per_minute: int, now_s: float, scope: str = "") -> RateDecision:
        name = f"rl:{tenant_id}:{scope + ':' if scope else ''}{_window(now_s)}"
        pipe = self._client.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, _KEEP_S)
        count, _ = pipe.execute()
        return _decide(int(count), limit_per_minute, now_s)


class DynamoRateLimiter:
    """RateLimiter on DynamoDB: an atomic ADD on `T#<tenant>#RATE` / `W#[<scope>#]<window>`, expiring by TTL."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    @store_edge
    def check(self, tenant_id: str, limit_per_minute: int, now_s: float, scope: str = "") -> RateDecision:
        window = _window(now_s)
        response = self._client.update_item(
            TableName=self._table,
            Key=key(tenant_pk(tenant_id) + "#RATE", f"W#{scope + '#' if scope else ''}{window}"),
            UpdateExpression="ADD #count :one SET #exp = :exp",
            ExpressionAttributeNames={"#count": "count", "#exp": TTL_ATTRIBUTE},
            ExpressionAttributeValues={":one": n(1), ":exp": n((window + 1) * WINDOW_S + _KEEP_S)},
            ReturnValues="UPDATED_NEW",
        )
        return _decide(number(response["Attributes"], "count"), limit_per_minute, now_s)


class FallbackRateLimiter:
    """Redis first; DynamoDB while Redis is unreachable, retrying Redis after a cool-down.

    The two backends count separately, so a switch-over may let up to one extra window's worth
    of requests through: availability over precision while Redis is down.
    """

    def __init__(
        self,
        primary: RateLimiter,
        fallback: RateLimiter,
        cool_down_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary, self._fallback = primary, fallback
        self._cool_down_s, self._clock = cool_down_s, clock
        self._primary_down_until = 0.0

    @property
    def is_degraded(self) -> bool:
        """True while Redis is skipped after a failure."""
        return self._clock() < self._primary_down_until

    def check(self, tenant_id: str, limit_per_minute: int, now_s: float, scope: str = "") -> RateDecision:
        if not self.is_degraded:
            try:
                return self._primary.check(tenant_id, limit_per_minute, now_s, scope)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._primary_down_until = self._clock() + self._cool_down_s
                logger.warning(
                    "rate limiter falls back to DynamoDB",
                    extra={
                        "tenant_id": tenant_id,
                        "error": type(exc).__name__,
                        "cool_down_s": self._cool_down_s,
                    },
                )
        return self._fallback.check(tenant_id, limit_per_minute, now_s, scope)
