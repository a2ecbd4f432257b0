"""Inbound dedupe markers in DynamoDB: one conditional PutItem per provider message id, with a TTL.

DynamoDB deletes expired items only eventually (up to days later; moto never does), so a marker
whose `expires_at` is past counts as absent: the condition lets a put overwrite it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chalicelib.domain.errors import NotFound
from chalicelib.stores.field_versions import cancellation_codes
from chalicelib.stores.items import TTL_ATTRIBUTE, dedupe_pk, is_condition_failure, key, n, store_edge
from chalicelib.stores.liveness import is_gone, live_checks

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

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

    @store_edge
    def first_sighting_live(self, tenant_id: str, agent_id: str, channel: str, message_id: str,
                            ttl_s: int) -> bool:
        """first_sighting, in one transaction with the liveness checks of the tenant and the agent.

        The first write of an inbound message, so a binding still cached after its tenant or agent
        was deleted writes nothing: raises NotFound then (stores/liveness.py).
        """
        now = int(self._clock())
        item = key(dedupe_pk(tenant_id, channel), message_id)
        item[TTL_ATTRIBUTE] = n(now + ttl_s)
        transaction: list[TransactWriteItemTypeDef] = [
            *live_checks(self._table, tenant_id, agent_id),
            {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": f"{_ABSENT} OR {_EXPIRED}",
                     "ExpressionAttributeNames": {"#exp": TTL_ATTRIBUTE},
                     "ExpressionAttributeValues": {":now": n(now)}}},
        ]
        try:
            self._client.transact_write_items(TransactItems=transaction)
        except ClientError as exc:
            if is_gone(exc, transaction):
                raise NotFound("no such webhook (its tenant or agent was deleted)") from exc
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                return False
            raise
        return True

    @store_edge
    def forget(self, tenant_id: str, channel: str, message_id: str) -> None:
        """Drop the marker: the message was not taken after all, so the sender's retry must count."""
        self._client.delete_item(TableName=self._table, Key=key(dedupe_pk(tenant_id, channel), message_id))
