"""DynamoBindingStore: bindings found by id in one read, secrets sealed by KMS, tenants kept apart."""

from __future__ import annotations

import pytest

from chalicelib.domain.channel import ChannelBinding, ChannelName
from chalicelib.domain.errors import NotFound
from chalicelib.stores.dynamo_bindings import DynamoBindingStore
from chalicelib.stores.kms_secrets import KmsCipher
from chalicelib.stores.metering import CallMeter
from tests.conftest import Aws

AUTH_TOKEN = "twilio-auth-token-7f3a9c"


def a_binding(
    binding_id: str = "bnd_1", tenant: str = "acme", agent: str = "support", **changes: object
) -> ChannelBinding:
    values: dict[str, object] = {
        "binding_id": binding_id,
        "tenant_id": tenant,
        "agent_id": agent,
        "channel": ChannelName.TWILIO,
        "secrets": {"account_sid": "AC123", "auth_token": AUTH_TOKEN},
        "config": {"from_number": "+15550001111"},
        "created_at": "2026-01-01T00:00:00Z",
    }
    values.update(changes)
    return ChannelBinding.model_validate(values)


@pytest.fixture
def store(any_aws: Aws) -> DynamoBindingStore:
    return DynamoBindingStore(
        any_aws.dynamodb, any_aws.table, KmsCipher(any_aws.kms, any_aws.env["RUCHE_SECRETS_KEY_ID"])
    )


def test_a_binding_is_found_by_its_id_in_one_read_with_its_secrets(
    any_aws: Aws, store: DynamoBindingStore
) -> None:
    binding = a_binding()
    store.put(binding)
    meter = CallMeter.attach(any_aws.dynamodb)
    assert store.get("bnd_1") == binding
    assert meter.by_operation == {"GetItem": 1}
    assert store.get("bnd_unknown") is None


def test_secrets_are_never_plaintext_in_the_table(any_aws: Aws, store: DynamoBindingStore) -> None:
    store.put(a_binding())
    items = any_aws.dynamodb.scan(TableName=any_aws.table)["Items"]
    assert len(items) == 2
    assert all(AUTH_TOKEN not in str(item) for item in items)
    assert all(AUTH_TOKEN.encode() not in item["sealed"]["B"] for item in items)


def test_a_binding_without_secrets_round_trips(store: DynamoBindingStore) -> None:
    binding = a_binding(channel=ChannelName.API, secrets={})
    store.put(binding)
    assert store.get("bnd_1") == binding


def test_listing_gives_the_agents_bindings_only(store: DynamoBindingStore) -> None:
    first, second = (
        a_binding("bnd_1"),
        a_binding("bnd_2", channel=ChannelName.WEBCHAT, secrets={"token": "t"}),
    )
    store.put(first)
    store.put(second)
    store.put(a_binding("bnd_3", agent="sales"))
    assert store.list("acme", "support") == [first, second]
    assert store.list("intruder", "support") == []


def test_a_put_replaces_the_binding(store: DynamoBindingStore) -> None:
    store.put(a_binding())
    updated = a_binding(secrets={"account_sid": "AC999", "auth_token": "new"}, config={})
    store.put(updated)
    assert store.get("bnd_1") == updated
    assert store.list("acme", "support") == [updated]


def test_another_tenant_cannot_overwrite_or_delete_a_binding(store: DynamoBindingStore) -> None:
    binding = a_binding()
    store.put(binding)
    with pytest.raises(NotFound):
        store.put(a_binding(tenant="intruder"))
    assert store.delete("intruder", "bnd_1") is False
    assert store.get("bnd_1") == binding
    assert store.list("intruder", "support") == []


def test_a_deleted_binding_is_gone_from_lookup_and_listing(store: DynamoBindingStore) -> None:
    store.put(a_binding())
    assert store.delete("acme", "bnd_1") is True
    assert store.get("bnd_1") is None
    assert store.list("acme", "support") == []
    assert store.delete("acme", "bnd_1") is False
