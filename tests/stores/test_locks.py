"""One contract suite for every SessionLock: Redis, DynamoDB (in-process and over HTTP), and the fallback."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chalicelib.domain.errors import Unavailable
from chalicelib.stores.locks import DynamoSessionLock, FallbackSessionLock, RedisSessionLock
from chalicelib.stores.ports import SessionLock
from tests.conftest import Aws, RedisServer
from tests.stores.test_dynamo_sessions import dead_dynamodb

KEY = "T#acme#SK#0f3a"


def dead_redis() -> redis.Redis:
    """A client of a port nothing listens on, failing at once (no retries with backoff)."""
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


@dataclass
class Clock:
    """Real time plus an offset the test moves forward (DynamoDB locks expire by the caller's clock)."""

    offset_s: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


@dataclass
class LockUnderTest:
    lock: SessionLock
    clock: Clock
    sleeps: bool  # Redis expires keys by its own clock: time has to really pass
    backends: list[str] = field(default_factory=list)

    def let_time_pass(self, seconds: float) -> None:
        self.clock.offset_s += seconds
        if self.sleeps:
            time.sleep(seconds)


@pytest.fixture(params=["redis", "dynamodb-in-process", "dynamodb-over-http", "fallback"])
def subject(request: pytest.FixtureRequest, redis_client: redis.Redis) -> LockUnderTest:
    clock = Clock()
    if request.param == "redis":
        return LockUnderTest(RedisSessionLock(redis_client), clock, sleeps=True)
    fixture = "aws_http" if request.param == "dynamodb-over-http" else "aws"
    aws: Aws = request.getfixturevalue(fixture)
    dynamo = DynamoSessionLock(aws.dynamodb, aws.table, clock=clock)
    if request.param == "fallback":
        return LockUnderTest(FallbackSessionLock(RedisSessionLock(redis_client), dynamo), clock, sleeps=True)
    return LockUnderTest(dynamo, clock, sleeps=False)


def test_a_held_lock_cannot_be_taken_by_a_second_turn(subject: LockUnderTest) -> None:
    assert subject.lock.acquire(KEY, ttl_s=30) is not None
    assert subject.lock.acquire(KEY, ttl_s=30) is None
    assert subject.lock.acquire(KEY + "-other-session", ttl_s=30) is not None


def test_fencing_tokens_strictly_increase(subject: LockUnderTest) -> None:
    tokens = []
    for _ in range(5):
        token = subject.lock.acquire(KEY, ttl_s=30)
        assert token is not None
        tokens.append(token)
        assert subject.lock.release(KEY, token) is True
    assert tokens == sorted(set(tokens))


def test_release_by_a_stranger_fails_and_the_lock_stays_held(subject: LockUnderTest) -> None:
    token = subject.lock.acquire(KEY, ttl_s=30)
    assert token is not None
    assert subject.lock.release(KEY, token + 1) is False
    assert subject.lock.acquire(KEY, ttl_s=30) is None
    assert subject.lock.release(KEY, token) is True
    assert subject.lock.release(KEY, token) is False  # already released


def test_an_expired_lock_goes_to_the_next_owner_and_the_old_owner_cannot_release_it(
    subject: LockUnderTest,
) -> None:
    old = subject.lock.acquire(KEY, ttl_s=0.1)
    assert old is not None
    subject.let_time_pass(0.3)
    new = subject.lock.acquire(KEY, ttl_s=30)
    assert new is not None and new > old
    assert subject.lock.release(KEY, old) is False
    assert subject.lock.acquire(KEY, ttl_s=30) is None


def test_redis_tokens_keep_increasing_after_redis_lost_its_counters(redis_client: redis.Redis) -> None:
    lock = RedisSessionLock(redis_client)
    before = lock.acquire(KEY, ttl_s=30)
    assert before is not None
    redis_client.flushall()  # what a restart without persistence does
    after = lock.acquire(KEY, ttl_s=30)
    assert after is not None and after > before


def test_dynamodb_tokens_increase_even_when_the_clock_stands_still(aws: Aws) -> None:
    lock = DynamoSessionLock(aws.dynamodb, aws.table, clock=lambda: 1_800_000_000.0)
    tokens = []
    for _ in range(3):
        token = lock.acquire(KEY, ttl_s=30)
        assert token is not None
        tokens.append(token)
        lock.release(KEY, token)
    assert tokens == [1_800_000_000_000_000, 1_800_000_000_000_001, 1_800_000_000_000_002]


def test_redis_down_is_unavailable_for_the_redis_lock(redis_server: RedisServer) -> None:
    lock = RedisSessionLock(dead_redis())
    with pytest.raises(Unavailable):
        lock.acquire(KEY, ttl_s=30)
    with pytest.raises(Unavailable):
        lock.release(KEY, 1)


def test_the_fallback_lock_keeps_working_when_redis_stops_mid_run(
    aws: Aws,
    redis_client: redis.Redis,
    stoppable_redis: RedisServer,
) -> None:
    # GIVEN a fallback lock on a live Redis, which has handed out a token
    dynamo = DynamoSessionLock(aws.dynamodb, aws.table)
    lock = FallbackSessionLock(RedisSessionLock(redis_client), dynamo, retry_redis_after_s=0)
    on_redis = lock.acquire(KEY, ttl_s=30)
    assert on_redis is not None and lock.release(KEY, on_redis)
    # WHEN Redis stops
    stoppable_redis.stop()
    # THEN locks come from DynamoDB: taken once only, with larger tokens, released by their owner
    during = lock.acquire(KEY, ttl_s=30)
    assert during is not None and during > on_redis
    assert lock.acquire(KEY, ttl_s=30) is None
    assert FallbackSessionLock(RedisSessionLock(redis_client), dynamo).acquire(KEY, ttl_s=30) is None
    assert lock.release(KEY, during) is True
    again = lock.acquire(KEY, ttl_s=30)
    assert again is not None and again > during
    # AND when Redis is back (empty, as after a restart) it serves again, tokens still increasing,
    # while the lock taken during the outage is still released where it lives
    stoppable_redis.start()
    after = lock.acquire(KEY + "-next", ttl_s=30)
    assert after is not None and after > again
    assert lock.release(KEY, again) is True
    assert lock.acquire(KEY, ttl_s=30) is not None


def test_the_fallback_lock_skips_a_dead_redis_for_a_while(aws: Aws) -> None:
    now = [0.0]
    dead = RedisSessionLock(dead_redis())
    lock = FallbackSessionLock(
        dead, DynamoSessionLock(aws.dynamodb, aws.table), retry_redis_after_s=5, clock=lambda: now[0]
    )
    first = lock.acquire(KEY, ttl_s=30)
    assert first is not None
    assert lock.release(KEY, first) is True  # Redis not even tried: DynamoDB released it
    now[0] = 10.0
    second = lock.acquire(KEY, ttl_s=30)  # Redis tried again, still down: DynamoDB again
    assert second is not None and second > first


def test_an_unreachable_dynamodb_is_unavailable_for_the_dynamodb_and_fallback_locks() -> None:
    dynamo = DynamoSessionLock(dead_dynamodb(), "ruche-main")
    fallback = FallbackSessionLock(RedisSessionLock(dead_redis()), dynamo)
    for lock in (dynamo, fallback):
        with pytest.raises(Unavailable):
            lock.acquire(KEY, ttl_s=30)
        with pytest.raises(Unavailable):
            lock.release(KEY, 1)
