"""Tenants and their API keys in DynamoDB; keys are stored as sha256 hashes only.

Items: `T#<tenant>`/`TENANT`, `T#<tenant>`/`KEY#<key_id>` (the key's doc), and the global lookup
`APIKEY#<sha256>`/`APIKEY` (tenant_id, key_id, created_at: no tenant data) that authentication
reads in one GetItem. Revoking deletes the lookup in the same transaction that flags the key.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from chalicelib.domain.errors import Conflict
from chalicelib.domain.tenant import ApiKey, Tenant
from chalicelib.stores.items import (
    apikey_pk,
    delete_keys,
    doc_item,
    is_condition_failure,
    key,
    partition_items,
    read_doc,
    s,
    store_edge,
    tenant_pk,
    text,
)
from chalicelib.stores.liveness import tombstone_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.stores.items import Item

logger = Logger(child=True)

_TENANT_SK = "TENANT"
_LOOKUP_SK = "APIKEY"






def _key_sk(key_id: str) -> str:
    return f"KEY#{key_id}"


class DynamoTenantStore:
    """TenantStore on the main table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    @store_edge
    def create(self, tenant: Tenant) -> None:
        """Store a new tenant. Raises Conflict when the tenant id is taken."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=doc_item(tenant_pk(tenant.tenant_id), _TENANT_SK, tenant),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise Conflict("tenant already exists", tenant_id=tenant.tenant_id) from exc
            raise

    @store_edge
    def get(self, tenant_id: str) -> Tenant | None:
        item = self._client.get_item(TableName=self._table, Key=key(tenant_pk(tenant_id), _TENANT_SK)).get(
            "Item"
        )
        return None if item is None else read_doc(item, Tenant)

    @store_edge
    def delete(self, tenant_id: str) -> None:
        """Erase every item of the tenant (all partitions `T#<tenant>…`) and its global lookups.

        The tenant's tombstone is written first (stores/liveness.py): from then on every gated
        write under the tenant is refused, and the Scan that follows finds every write that
        committed before it. A Scan, acceptable for this rare admin operation: tenant partitions
        are not indexed.
        """
        self._client.put_item(TableName=self._table, Item=tombstone_item(tenant_id, time.time()))
        keys = [key(text(item, "pk"), text(item, "sk")) for item in self._tenant_items(tenant_id)]
        delete_keys(self._client, self._table, keys)
        logger.info("tenant erased", extra={"tenant_id": tenant_id, "items": len(keys)})

    def _tenant_items(self, tenant_id: str) -> list[Item]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "pk, sk",
            # Tenant partitions, plus global lookups, which carry a tenant_id attribute.
            "FilterExpression": "pk = :pk OR begins_with(pk, :prefix) OR tenant_id = :tenant",
            "ExpressionAttributeValues": {
                ":pk": s(tenant_pk(tenant_id)),
                ":prefix": s(tenant_pk(tenant_id) + "#"),
                ":tenant": s(tenant_id),
            },
            "ConsistentRead": True,
        }
        found: list[Item] = []
        while True:
            page = self._client.scan(**params)
            found.extend(page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @store_edge
    def add_key(self, api_key: ApiKey) -> None:
        """Store the key's doc and its global lookup in one transaction. Raises Conflict on a reused hash."""
        lookup = key(apikey_pk(api_key.key_hash), _LOOKUP_SK)
        lookup.update(
            tenant_id=s(api_key.tenant_id), key_id=s(api_key.key_id), created_at=s(api_key.created_at)
        )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": doc_item(tenant_pk(api_key.tenant_id), _key_sk(api_key.key_id), api_key),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": lookup,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except self._client.exceptions.TransactionCanceledException as exc:
            raise Conflict("this API key is already registered", key_id=api_key.key_id) from exc

    @store_edge
    def find_key(self, key_hash: str) -> ApiKey | None:
        """The live key with this hash (one GetItem), or None if unknown or revoked."""
        item = self._client.get_item(
            TableName=self._table, Key=key(apikey_pk(key_hash), _LOOKUP_SK), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return ApiKey(
            key_id=text(item, "key_id"),
            tenant_id=text(item, "tenant_id"),
            key_hash=key_hash,
            created_at=text(item, "created_at"),
        )

    @store_edge
    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        """Every key of the tenant, revoked ones included (flagged), oldest id order."""
        items = partition_items(self._client, self._table, tenant_pk(tenant_id), "KEY#", consistent=True)
        return [read_doc(item, ApiKey) for item in items]

    @store_edge
    def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        """Flag the key revoked and drop its lookup at once. False when unknown or already revoked."""
        item = self._client.get_item(
            TableName=self._table, Key=key(tenant_pk(tenant_id), _key_sk(key_id)), ConsistentRead=True
        ).get("Item")
        if item is None:
            return False
        api_key = read_doc(item, ApiKey)
        if api_key.revoked:
            return False
        revoked = api_key.model_copy(update={"revoked": True})
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": doc_item(tenant_pk(tenant_id), _key_sk(key_id), revoked),
                    }
                },
                {"Delete": {"TableName": self._table, "Key": key(apikey_pk(api_key.key_hash), _LOOKUP_SK)}},
            ]
        )
        logger.info("api key revoked", extra={"tenant_id": tenant_id, "key_id": key_id})
        return True
