"""Which idempotency records hold an interlocutor's turns, so erasure reaches them too.

A completed `Idempotency-Key` record (runtime/idempotency.py, the idempotency table) keeps the
whole first answer of a turn, reply text included, for 24 h: a replay after the interlocutor was
erased must not answer it again. Each record is listed under its interlocutor:

    T#<tenant>#I#<interlocutor>   IDEM#<record id>   expires_at (the record's own expiry)

so erasing the interlocutor deletes the records it lists (and the listing goes with the
interlocutor's partition). A tenant deletion removes every record of the tenant by its id prefix
`turn#<tenant>#` (a Scan of the idempotency table, like the tenant's own Scan of the main table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.stores.items import TTL_ATTRIBUTE, interlocutor_pk, key, n, partition_items, s, store_edge, text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_PREFIX = "IDEM#"


class DynamoIdempotencyIndex:
    """Listings of idempotency records on the main table; the records live in `idempotency_table`."""

    def __init__(self, client: DynamoDBClient, table: str, idempotency_table: str) -> None:
        self._client, self._table, self._records = client, table, idempotency_table

    @store_edge
    def remember(self, tenant_id: str, interlocutor_id: str, record_id: str, expires_at_s: int) -> None:
        """List one record under the interlocutor whose turn it answered."""
        self._client.put_item(TableName=self._table, Item={
            **key(interlocutor_pk(tenant_id, interlocutor_id), _PREFIX + record_id),
            "record_id": s(record_id), TTL_ATTRIBUTE: n(expires_at_s),
        })

    @store_edge
    def erase_interlocutor(self, tenant_id: str, interlocutor_id: str) -> int:
        """Delete the records listed under the interlocutor, then their listings. Returns how many."""
        pk = interlocutor_pk(tenant_id, interlocutor_id)
        listed = list(partition_items(self._client, self._table, pk, _PREFIX, consistent=True))
        for item in listed:
            self._client.delete_item(TableName=self._records, Key={"id": s(text(item, "record_id"))})
            self._client.delete_item(TableName=self._table, Key=key(pk, text(item, "sk")))
        return len(listed)

    @store_edge
    def erase_tenant(self, tenant_id: str) -> int:
        """Delete every idempotency record of the tenant. Returns how many."""
        params: dict[str, Any] = {
            "TableName": self._records, "ProjectionExpression": "id", "ConsistentRead": True,
            "FilterExpression": "begins_with(id, :prefix)",
            "ExpressionAttributeValues": {":prefix": s(f"turn#{tenant_id}#")},
        }
        erased = 0
        while True:
            page = self._client.scan(**params)
            for item in page.get("Items", []):
                self._client.delete_item(TableName=self._records, Key={"id": item["id"]})
                erased += 1
            if not page.get("LastEvaluatedKey"):
                return erased
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
