"""DynamoDedupeStore: a provider message id is seen for the first time exactly once while it lives."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Unavailable
from chalicelib.stores.dynamo_dedupe import DynamoDedupeStore
from tests.conftest import Aws


class Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def store(any_aws: Aws, clock: Clock) -> DynamoDedupeStore:
    return DynamoDedupeStore(any_aws.dynamodb, any_aws.table, clock=clock)


def test_a_message_is_a_first_sighting_once_then_a_duplicate(store: DynamoDedupeStore) -> None:
    assert store.first_sighting("acme", "twilio", "SM1", ttl_s=3600) is True
    assert store.first_sighting("acme", "twilio", "SM1", ttl_s=3600) is False
    assert store.first_sighting("acme", "twilio", "SM2", ttl_s=3600) is True


def test_the_same_id_on_another_channel_or_tenant_is_a_different_message(store: DynamoDedupeStore) -> None:
    assert store.first_sighting("acme", "twilio", "M1", ttl_s=3600) is True
    assert store.first_sighting("acme", "slack", "M1", ttl_s=3600) is True
    assert store.first_sighting("other", "twilio", "M1", ttl_s=3600) is True


def test_an_expired_marker_counts_as_absent(store: DynamoDedupeStore, clock: Clock) -> None:
    assert store.first_sighting("acme", "twilio", "SM1", ttl_s=60) is True
    clock.now_s += 59
    assert store.first_sighting("acme", "twilio", "SM1", ttl_s=60) is False
    clock.now_s += 2  # past the TTL: moto (and DynamoDB for a while) still holds the item
    assert store.first_sighting("acme", "twilio", "SM1", ttl_s=60) is True
    assert store.first_sighting("acme", "twilio", "SM1", ttl_s=60) is False


def test_a_storage_failure_is_unavailable_not_a_duplicate(any_aws: Aws) -> None:
    store = DynamoDedupeStore(any_aws.dynamodb, "no-such-table")
    with pytest.raises(Unavailable):
        store.first_sighting("acme", "twilio", "SM1", ttl_s=60)
