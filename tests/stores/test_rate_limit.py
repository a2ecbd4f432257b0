"""Rate limiters: N requests a minute per tenant on Redis, on DynamoDB, and Redis falling back to DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from chalicelib.stores.ports import RateDecision, RateLimiter
from chalicelib.stores.rate_limit import DynamoRateLimiter, FallbackRateLimiter, RedisRateLimiter
from tests.conftest import Aws, RedisServer

MINUTE = 1_800_000_000.0  # the start of a window (divisible by 60)


@pytest.fixture(params=["redis", "dynamodb-in-process", "dynamodb-over-http"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "redis":
        return RedisRateLimiter(request.getfixturevalue("redis_client"))
    aws: Aws = request.getfixturevalue("aws" if request.param == "dynamodb-in-process" else "aws_http")
    return DynamoRateLimiter(aws.dynamodb, aws.table)


def test_n_requests_pass_then_the_next_waits_for_the_window(limiter: RateLimiter) -> None:
    decisions = [limiter.check("acme", 3, MINUTE + 10) for _ in range(3)]
    assert decisions == [RateDecision(allowed=True, retry_after_s=0)] * 3
    assert limiter.check("acme", 3, MINUTE + 10.5) == RateDecision(allowed=False, retry_after_s=50)
    assert limiter.check("acme", 3, MINUTE + 59.9) == RateDecision(allowed=False, retry_after_s=1)


def test_the_next_window_allows_again(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.check("acme", 2, MINUTE)
    assert limiter.check("acme", 2, MINUTE + 60).allowed is True


def test_tenants_have_their_own_counters(limiter: RateLimiter) -> None:
    limiter.check("acme", 1, MINUTE)
    assert limiter.check("acme", 1, MINUTE).allowed is False
    assert limiter.check("other", 1, MINUTE).allowed is True


def test_scopes_of_a_tenant_count_apart_from_the_tenant_and_each_other(limiter: RateLimiter) -> None:
    assert limiter.check("acme", 1, MINUTE, scope="bnd:b1").allowed is True
    assert limiter.check("acme", 1, MINUTE, scope="bnd:b1").allowed is False
    assert limiter.check("acme", 1, MINUTE, scope="bnd:b2").allowed is True
    assert limiter.check("acme", 1, MINUTE).allowed is True  # the tenant's own counter is untouched


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def stopped_redis(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[RedisServer]:
    """Redis stopped for the test, and running again afterwards for every other test."""
    redis_server.stop()
    try:
        yield redis_server
    finally:
        if redis_server.process is None or redis_server.process.poll() is not None:
            redis_server.start()


def test_requests_fall_back_to_dynamodb_while_redis_is_down_and_return_after_a_cool_down(
    any_aws: Aws, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    dynamo = DynamoRateLimiter(any_aws.dynamodb, any_aws.table)
    clock = Clock()
    client = redis.Redis.from_url(redis_server.url, socket_connect_timeout=1, socket_timeout=1)
    limiter = FallbackRateLimiter(RedisRateLimiter(client), dynamo, cool_down_s=5, clock=clock)
    assert limiter.check("acme", 2, MINUTE).allowed is True  # counted in Redis
    assert redis_client.get(f"rl:acme:{int(MINUTE // 60)}") == b"1"

    redis_server.stop()
    try:
        # DynamoDB counts from zero: two more pass, the third is refused.
        assert [limiter.check("acme", 2, MINUTE + 1).allowed for _ in range(3)] == [True, True, False]
        assert limiter.is_degraded is True
        counter = any_aws.dynamodb.get_item(
            TableName=any_aws.table, Key={"pk": {"S": "T#acme#RATE"}, "sk": {"S": f"W#{int(MINUTE // 60)}"}}
        )["Item"]
        assert counter["count"]["N"] == "3"
    finally:
        redis_server.start()

    assert limiter.check("acme", 2, MINUTE + 2).allowed is False  # still cooling down: DynamoDB says no
    clock.now_s += 5
    assert limiter.is_degraded is False
    assert limiter.check("acme", 2, MINUTE + 3) == RateDecision(allowed=True, retry_after_s=0)  # fresh Redis
    client.close()


def test_a_redis_outage_without_fallback_surfaces_as_a_connection_error(stopped_redis: RedisServer) -> None:
    client = redis.Redis.from_url(stopped_redis.url, socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        RedisRateLimiter(client).check("acme", 5, MINUTE)
