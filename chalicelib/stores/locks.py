"""Session locks with fencing tokens: Redis first, DynamoDB when Redis is down (DESIGN.md §3).

Fencing tokens are strictly increasing per key across BOTH backends and across a Redis restart
that lost its data. Each backend keeps a per-key counter and raises it to a clock floor (the
current time in microseconds) whenever the floor is ahead: token = max(counter + 1, now_us). A
plain INCR would restart at 1 after a Redis restart without persistence, and two independent
counters (Redis, DynamoDB) would interleave at a switch. The floor costs nothing (it rides in the
same Lua script / UpdateItem) and keeps the Redis path at one round trip; the price is that a
switch between backends relies on host clocks agreeing to better than the time it takes to notice
Redis is down (NTP-synced Lambda hosts: well under a millisecond). Taking every token from
DynamoDB instead would be clock-free but add a DynamoDB round trip to every turn (§7 budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import Unavailable
from chalicelib.stores import items as it

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)

LOCK_SK = "LOCK"

# KEYS[1] lock, KEYS[2] fencing counter; ARGV[1] ttl ms, ARGV[2] clock floor (µs).
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if redis.call('INCR', KEYS[2]) < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
-- GET returns the counter as Redis stores it: Lua 5.1 would print a 16-digit number as 1.7e+15.
local token = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"""
# Compare-and-delete: only the owner's token releases the lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def clock_floor_us(now_s: float) -> int:
    """The smallest token a lock may hand out at now_s (see the module docstring)."""
    return int(now_s * 1_000_000)


class RedisSessionLock:
    """SessionLock on Redis: SET NX PX semantics in one Lua call, owner token = fencing token.

    Raises Unavailable (from the redis ConnectionError/TimeoutError) when Redis cannot be reached.
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str = "ruche:lock:", clock: Callable[[], float] = time.time
    ) -> None:
        self._client, self._prefix, self._clock = client, prefix, clock
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def acquire(self, key: str, ttl_s: float) -> int | None:
        """A fencing token, or None while another owner holds the lock."""
        keys = [self._prefix + key, self._prefix + key + ":fence"]
        args = [max(1, int(ttl_s * 1000)), clock_floor_us(self._clock())]
        try:
            token = self._acquire(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable("redis is unreachable") from exc
        return int(token) if token is not None else None

    def release(self, key: str, token: int) -> bool:
        """True if this token held the lock; False when it expired or another owner has it now."""
        try:
            return bool(self._release(keys=[self._prefix + key], args=[token]))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable("redis is unreachable") from exc


class DynamoSessionLock:
    """SessionLock on the main table: one item per key holding the expiry and the fencing counter.

    The lock is free when `held_until` is absent or past; acquiring is a conditional UpdateItem.
    Raises Unavailable when DynamoDB fails.
    """

    def __init__(self, client: DynamoDBClient, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._client, self._table, self._clock = client, table, clock

    def acquire(self, key: str, ttl_s: float) -> int | None:
        now = self._clock()
        floor = clock_floor_us(now)
        free = "(attribute_not_exists(held_until) OR held_until < :now)"
        values = {":now": it.n(now), ":until": it.n(now + ttl_s), ":ttl": it.n(int(now + ttl_s + 86_400))}
        # First try to jump the counter to the clock floor; if the counter is already past it
        # (several acquisitions within a microsecond, or a clock behind), add one instead.
        attempts = [
            (
                "SET held_until = :until, fence = :floor, expires_at = :ttl",
                f"{free} AND (attribute_not_exists(fence) OR fence < :floor)",
                {":floor": it.n(floor)},
            ),
            ("SET held_until = :until, expires_at = :ttl ADD fence :one", free, {":one": it.n(1)}),
        ]
        for update, condition, more in attempts:
            try:
                response = self._client.update_item(
                    TableName=self._table,
                    Key=self._key(key),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues={**values, **more},
                    ReturnValues="UPDATED_NEW",
                )
            except ClientError as exc:
                if it.is_condition_failure(exc):
                    continue
                raise Unavailable("could not take the lock") from exc
            except BotoCoreError as exc:
                raise Unavailable("could not take the lock") from exc
            return it.number(response["Attributes"], "fence")
        return None

    def release(self, key: str, token: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(key),
                UpdateExpression="REMOVE held_until",
                ConditionExpression="fence = :token AND held_until >= :now",
                ExpressionAttributeValues={":token": it.n(token), ":now": it.n(self._clock())},
            )
        except ClientError as exc:
            if it.is_condition_failure(exc):
                return False
            raise Unavailable("could not release the lock") from exc
        except BotoCoreError as exc:
            raise Unavailable("could not release the lock") from exc
        return True

    @staticmethod
    def _key(key: str) -> it.Item:
        # Keys from the runtime start with the tenant partition (T#<tenant>...), so tenant
        # deletion finds them; the counter outlives the lock by a day (expires_at) then goes.
        return it.key(f"LOCK#{key}" if not key.startswith("T#") else key, LOCK_SK)


class FallbackSessionLock:
    """Redis while it answers; DynamoDB while it does not (retried after `retry_redis_after_s`).

    Tokens stay strictly increasing across the switch because both backends floor them at the
    clock (module docstring). Releasing tries Redis, then DynamoDB, so a lock taken during an
    outage is released wherever it lives.
    """

    def __init__(
        self,
        redis_lock: RedisSessionLock,
        dynamo_lock: DynamoSessionLock,
        *,
        retry_redis_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis, self._dynamo = redis_lock, dynamo_lock
        self._retry_after_s, self._clock = retry_redis_after_s, clock
        self._redis_down_until = 0.0  # skip a dead Redis instead of paying its timeout every turn

    def acquire(self, key: str, ttl_s: float) -> int | None:
        if self._redis_usable():
            try:
                return self._redis.acquire(key, ttl_s)
            except Unavailable:
                self._mark_redis_down("acquire")
        return self._dynamo.acquire(key, ttl_s)

    def release(self, key: str, token: int) -> bool:
        if self._redis_usable():
            try:
                if self._redis.release(key, token):
                    return True
            except Unavailable:
                self._mark_redis_down("release")
        return self._dynamo.release(key, token)

    def _redis_usable(self) -> bool:
        return self._clock() >= self._redis_down_until

    def _mark_redis_down(self, operation: str) -> None:
        self._redis_down_until = self._clock() + self._retry_after_s
        logger.warning(
            "redis unreachable: session lock falls back to DynamoDB",
            extra={"operation": operation, "retry_after_s": self._retry_after_s},
        )
