"""The tenant config layer in DynamoDB: one item, `T#<tenant>` / `CONFIG`, the layer as JSON.

The caller validates the layer (domain/config.validate_layer) before it gets here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib.stores.items import DOC_ATTRIBUTE, key, store_edge, tenant_pk, text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONFIG_SK = "CONFIG"
_CONFIG_SK = CONFIG_SK


class DynamoConfigStore:
    """ConfigStore on the main table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    @store_edge
    def get_tenant_layer(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's layer, or {} when it never set one."""
        response = self._client.get_item(TableName=self._table, Key=key(tenant_pk(tenant_id), _CONFIG_SK))
        item = response.get("Item")
        if item is None:
            return {}
        layer: dict[str, Any] = json.loads(text(item, DOC_ATTRIBUTE))
        return layer

    @store_edge
    def put_tenant_layer(self, tenant_id: str, layer: dict[str, Any]) -> None:
        """Replace the tenant's layer as a whole."""
        item = key(tenant_pk(tenant_id), _CONFIG_SK)
        item[DOC_ATTRIBUTE] = {"S": json.dumps(layer, separators=(",", ":"))}
        self._client.put_item(TableName=self._table, Item=item)
