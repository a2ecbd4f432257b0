"""Inbound dedupe markers in DynamoDB: one conditional PutItem per provider message id, with a TTL.

DynamoDB deletes expired items only eventually (up to days later; moto never does), so a marker
whose `expires_at` is past counts as absent: the condition lets a put overwrite it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chalicelib.stores.items import TTL_ATTRIBUTE, dedupe_pk, is_condition_failure, key, n, store_edge

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ABSENT = "attribute_not_exists(pk)"
_EXPIRED = "#exp < :now"


class DynamoDedupeStore:
    """DedupeStore on the main table: `T#<tenant>#DEDUPE#<channel>` / `<provider message id>`."""

    def __init__(self, client: DynamoDBClient, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client, self._table, self._clock = client, table, clock

    @store_edge
    def first_sighting(self, tenant_id: str, channel: str, message_id: str, ttl_s: int) -> bool:
        """True exactly once per (tenant, channel, message id) while the marker lives (ttl_s)."""
        now = int(self._clock())
        item = key(dedupe_pk(tenant_id, channel), message_id)
        item[TTL_ATTRIBUTE] = n(now + ttl_s)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=f"{_ABSENT} OR {_EXPIRED}",
                ExpressionAttributeNames={"#exp": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": n(now)},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True
