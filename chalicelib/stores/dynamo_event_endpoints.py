"""Tenants' outbound event endpoints in DynamoDB, the HMAC secret encrypted by KMS.

    T#<tenant>   EVENTEP#<endpoint_id>   the endpoint (doc without its secret) + `sealed` secret
                                         + `last_failure` / `last_delivered_at` (delivery outcomes)

The secret is sealed under the context {tenant_id, endpoint_id}, like channel bindings, so a
ciphertext copied to another tenant or endpoint does not decrypt. Delivery outcomes live in their
own attributes so the worker records them with one UpdateItem that never rewrites the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.domain.event import DeliveryFailure, EventEndpoint
from chalicelib.stores.items import doc_item, key, partition_items, read_doc, s, store_edge, tenant_pk, text
from chalicelib.stores.kms_secrets import KmsCipher

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.stores.items import Item

_PREFIX = "EVENTEP#"


class DynamoEventEndpointStore:
    """Event endpoints on the main table. Raises Unavailable when DynamoDB or KMS fails."""

    def __init__(self, client: DynamoDBClient, table: str, cipher: KmsCipher) -> None:
        self._client, self._table, self._cipher = client, table, cipher

    @store_edge
    def put(self, endpoint: EventEndpoint) -> None:
        """Create or replace the endpoint (its delivery outcomes start afresh)."""
        stored = endpoint.model_copy(update={"secret": "", "last_failure": None, "last_delivered_at": None})
        sealed = self._cipher.encrypt(endpoint.secret.encode(), _context(endpoint.tenant_id, endpoint.endpoint_id))
        item = doc_item(tenant_pk(endpoint.tenant_id), _PREFIX + endpoint.endpoint_id, stored,
                        sealed={"B": sealed})
        self._client.put_item(TableName=self._table, Item=item)

    @store_edge
    def get(self, tenant_id: str, endpoint_id: str, *, with_secret: bool = False) -> EventEndpoint | None:
        """The endpoint, its secret decrypted only when asked; None when unknown."""
        response = self._client.get_item(
            TableName=self._table, Key=key(tenant_pk(tenant_id), _PREFIX + endpoint_id), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._read(item, with_secret=with_secret)

    @store_edge
    def list(self, tenant_id: str) -> list[EventEndpoint]:
        """The tenant's endpoints by id, without their secrets (no KMS call)."""
        items = partition_items(self._client, self._table, tenant_pk(tenant_id), _PREFIX)
        return [self._read(item, with_secret=False) for item in items]

    @store_edge
    def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        """Remove the endpoint; False when there was none."""
        response = self._client.delete_item(
            TableName=self._table, Key=key(tenant_pk(tenant_id), _PREFIX + endpoint_id), ReturnValues="ALL_OLD"
        )
        return "Attributes" in response

    @store_edge
    def record_failure(self, tenant_id: str, endpoint_id: str, failure: DeliveryFailure) -> None:
        """Keep the last failed delivery; nothing happens when the endpoint was deleted meanwhile."""
        self._update(tenant_id, endpoint_id, "last_failure", failure.model_dump_json())

    @store_edge
    def record_delivery(self, tenant_id: str, endpoint_id: str, at: str) -> None:
        """Keep the time of the last successful delivery."""
        self._update(tenant_id, endpoint_id, "last_delivered_at", at)

    def _update(self, tenant_id: str, endpoint_id: str, attribute: str, value: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key(tenant_pk(tenant_id), _PREFIX + endpoint_id),
                UpdateExpression="SET #a = :v",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": s(value)},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # deleted while its event was in flight: nobody can read the outcome

    def _read(self, item: Item, *, with_secret: bool) -> EventEndpoint:
        endpoint = read_doc(item, EventEndpoint)
        update: dict[str, object] = {}
        if "last_failure" in item:
            update["last_failure"] = DeliveryFailure.model_validate_json(text(item, "last_failure"))
        if "last_delivered_at" in item:
            update["last_delivered_at"] = text(item, "last_delivered_at")
        if with_secret:
            context = _context(endpoint.tenant_id, endpoint.endpoint_id)
            update["secret"] = self._cipher.decrypt(item["sealed"]["B"], context).decode()
        return endpoint.model_copy(update=update) if update else endpoint


def _context(tenant_id: str, endpoint_id: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "endpoint_id": endpoint_id}
