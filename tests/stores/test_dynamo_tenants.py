"""DynamoTenantStore: tenants, hashed API keys, revocation at once, and erasing a whole tenant."""

from __future__ import annotations

import pytest

from chalicelib.domain.bundle import NewVersion
from chalicelib.domain.errors import Conflict, Unavailable
from chalicelib.domain.tenant import Tenant, hash_api_key, issue_api_key
from chalicelib.stores.dynamo_bundles import DynamoBundleStore
from chalicelib.stores.dynamo_tenants import DynamoTenantStore
from tests.conftest import Aws
from tests.stores.test_dynamo_bundles import a_bundle


@pytest.fixture
def store(any_aws: Aws) -> DynamoTenantStore:
    return DynamoTenantStore(any_aws.dynamodb, any_aws.table)


def all_items(aws: Aws) -> list[tuple[str, str]]:
    pages = aws.dynamodb.get_paginator("scan").paginate(TableName=aws.table)
    return sorted((item["pk"]["S"], item["sk"]["S"]) for page in pages for item in page["Items"])


def test_a_created_tenant_reads_back_and_cannot_be_created_twice(store: DynamoTenantStore) -> None:
    tenant = Tenant(tenant_id="acme", name="Acme", created_at="2026-01-01T00:00:00Z")
    store.create(tenant)
    assert store.get("acme") == tenant
    assert store.get("nobody") is None
    with pytest.raises(Conflict):
        store.create(Tenant(tenant_id="acme", name="Impostor"))
    assert store.get("acme") == tenant


def test_an_issued_key_is_found_by_the_hash_of_its_secret(any_aws: Aws, store: DynamoTenantStore) -> None:
    secret, key = issue_api_key("acme")
    store.add_key(key)
    assert secret.startswith("rk_") and len(secret) > 30
    assert store.find_key(hash_api_key(secret)) == key
    assert store.find_key(hash_api_key(secret + "x")) is None
    stored = str(any_aws.dynamodb.scan(TableName=any_aws.table)["Items"])
    assert secret not in stored  # only the hash is kept


def test_a_revoked_key_is_not_found_at_once_and_stays_listed_as_revoked(store: DynamoTenantStore) -> None:
    secret, key = issue_api_key("acme")
    _, other = issue_api_key("acme")
    store.add_key(key)
    store.add_key(other)
    assert store.revoke_key("acme", key.key_id) is True
    assert store.find_key(hash_api_key(secret)) is None
    listed = {listed.key_id: listed.revoked for listed in store.list_keys("acme")}
    assert listed == {key.key_id: True, other.key_id: False}
    assert store.revoke_key("acme", key.key_id) is False
    assert store.revoke_key("acme", "key_unknown") is False


def test_another_tenant_cannot_revoke_or_list_a_key(store: DynamoTenantStore) -> None:
    secret, key = issue_api_key("acme")
    store.add_key(key)
    assert store.revoke_key("intruder", key.key_id) is False
    assert store.list_keys("intruder") == []
    assert store.find_key(hash_api_key(secret)) == key


def test_a_key_hash_registered_twice_is_a_conflict(store: DynamoTenantStore) -> None:
    _, key = issue_api_key("acme")
    store.add_key(key)
    with pytest.raises(Conflict):
        store.add_key(key.model_copy(update={"key_id": "key_other", "tenant_id": "intruder"}))
    assert store.find_key(key.key_hash) == key


def test_deleting_a_tenant_erases_its_items_and_lookups_and_nothing_else(
    any_aws: Aws, store: DynamoTenantStore
) -> None:
    for tenant_id in ("acme", "acme2"):  # acme2 shares a prefix with acme: it must survive
        store.create(Tenant(tenant_id=tenant_id, name=tenant_id))
        store.add_key(issue_api_key(tenant_id)[1])
        any_aws.dynamodb.put_item(
            TableName=any_aws.table, Item={"pk": {"S": f"T#{tenant_id}#S#ses_1"}, "sk": {"S": "SESSION"}}
        )
        any_aws.dynamodb.put_item(
            TableName=any_aws.table,
            Item={
                "pk": {"S": f"BINDING#bnd_{tenant_id}"},
                "sk": {"S": "BINDING"},
                "tenant_id": {"S": tenant_id},
            },
        )
    survivors = [item for item in all_items(any_aws) if "acme2" in item[0] or item[1] == "APIKEY"]
    acme2_key = store.list_keys("acme2")[0]

    store.delete("acme")

    assert store.get("acme") is None
    assert store.list_keys("acme") == []
    remaining = all_items(any_aws)
    assert not any(
        pk.startswith("T#acme#") or pk == "T#acme" or pk == "BINDING#bnd_acme" for pk, _ in remaining
    )
    assert f"APIKEY#{acme2_key.key_hash}" in {pk for pk, _ in remaining}
    # A tombstone (no tenant data, stores/liveness.py) marks the deletion; nothing else was added.
    tombstones = [item for item in remaining if item[0].startswith("TOMBSTONE#")]
    assert tombstones == [("TOMBSTONE#T#acme", "TENANT")]
    assert len(remaining) - len(tombstones) == len(survivors) - 1  # acme's APIKEY lookup went too
    assert store.find_key(acme2_key.key_hash) == acme2_key


def test_deleting_a_tenant_with_more_than_a_scan_page_erases_it_all(
    any_aws: Aws, store: DynamoTenantStore
) -> None:
    bundles = DynamoBundleStore(any_aws.dynamodb, any_aws.table)
    for _ in range(2):  # two versions of ~1 MB each: the Scan needs several pages
        bundles.publish("acme", "support", NewVersion(a_bundle(rules=400, noisy=True), vectors={}, embedding_model="m"))
    store.delete("acme")
    assert all_items(any_aws) == [("TOMBSTONE#T#acme", "TENANT")]  # only the deletion's mark remains


def test_a_storage_failure_on_create_is_unavailable(any_aws: Aws) -> None:
    with pytest.raises(Unavailable):
        DynamoTenantStore(any_aws.dynamodb, "no-such-table").create(Tenant(tenant_id="acme", name="Acme"))
