"""DynamoConfigStore: the tenant config layer round-trips as one item."""

from __future__ import annotations

import pytest

from chalicelib.stores.dynamo_config import DynamoConfigStore
from tests.conftest import Aws


@pytest.fixture
def store(any_aws: Aws) -> DynamoConfigStore:
    return DynamoConfigStore(any_aws.dynamodb, any_aws.table)


def test_a_tenant_without_a_layer_gets_an_empty_one(store: DynamoConfigStore) -> None:
    assert store.get_tenant_layer("acme") == {}


def test_a_layer_round_trips_and_a_put_replaces_it_whole(store: DynamoConfigStore) -> None:
    layer = {
        "llm": {"provider": "openai", "temperature": 0.2, "tasks": {"judge": {"model": None}}},
        "enforcement": {"max_regeneration_attempts": 3},
    }
    store.put_tenant_layer("acme", layer)
    assert store.get_tenant_layer("acme") == layer
    store.put_tenant_layer("acme", {"response": {"format": "plain"}})
    assert store.get_tenant_layer("acme") == {"response": {"format": "plain"}}


def test_one_tenants_layer_is_not_another_tenants(store: DynamoConfigStore) -> None:
    store.put_tenant_layer("acme", {"response": {"max_length": 300}})
    assert store.get_tenant_layer("other") == {}
