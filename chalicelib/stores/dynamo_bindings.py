"""Channel bindings in DynamoDB, with their secrets encrypted by KMS (never plaintext in the table).

    T#<tenant>#A#<agent>   BINDING#<binding_id>   the binding (listing per agent)
    BINDING#<binding_id>   BINDING                global lookup: tenant_id, agent_id, the binding

Both items hold the binding doc with `secrets` emptied, plus `sealed`: the secrets dict as JSON,
encrypted under the context {tenant_id, binding_id}. A webhook knows only the binding id, so get()
is one GetItem on the lookup (and one KMS Decrypt when the binding has secrets).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib.domain.channel import ChannelBinding
from chalicelib.domain.errors import NotFound
from chalicelib.stores.items import (
    agent_pk,
    binding_pk,
    doc_item,
    key,
    partition_items,
    read_doc,
    s,
    store_edge,
    text,
)
from chalicelib.stores.kms_secrets import KmsCipher

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.stores.items import Item

_PREFIX = "BINDING#"
_LOOKUP_SK = "BINDING"


class DynamoBindingStore:
    """BindingStore on the main table."""

    def __init__(self, client: DynamoDBClient, table: str, cipher: KmsCipher) -> None:
        self._client, self._table, self._cipher = client, table, cipher

    @store_edge
    def put(self, binding: ChannelBinding) -> None:
        """Create or replace the binding and its lookup in one transaction (secrets sealed first).

        Raises NotFound when the binding id belongs to another tenant (nothing is written).
        """
        stored = binding.model_copy(update={"secrets": {}})
        extra: dict[str, Any] = {"tenant_id": s(binding.tenant_id), "agent_id": s(binding.agent_id)}
        if binding.secrets:
            sealed = json.dumps(binding.secrets, separators=(",", ":")).encode()
            extra["sealed"] = {"B": self._cipher.encrypt(sealed, _context(binding))}
        listed = doc_item(
            agent_pk(binding.tenant_id, binding.agent_id), _PREFIX + binding.binding_id, stored, **extra
        )
        lookup = doc_item(binding_pk(binding.binding_id), _LOOKUP_SK, stored, **extra)
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._table, "Item": listed}},
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": lookup,
                            "ConditionExpression": "attribute_not_exists(pk) OR tenant_id = :tenant",
                            "ExpressionAttributeValues": {":tenant": s(binding.tenant_id)},
                        }
                    },
                ]
            )
        except self._client.exceptions.TransactionCanceledException as exc:
            raise NotFound("no such binding", binding_id=binding.binding_id) from exc

    @store_edge
    def get(self, binding_id: str) -> ChannelBinding | None:
        """The binding with its secrets, by the global lookup; None when unknown or deleted."""
        response = self._client.get_item(TableName=self._table, Key=key(binding_pk(binding_id), _LOOKUP_SK))
        item = response.get("Item")
        return None if item is None else self._unseal(item)

    @store_edge
    def list(self, tenant_id: str, agent_id: str) -> list[ChannelBinding]:
        """The agent's bindings, with their secrets, by binding id."""
        items = partition_items(self._client, self._table, agent_pk(tenant_id, agent_id), _PREFIX)
        return [self._unseal(item) for item in items]

    @store_edge
    def delete(self, tenant_id: str, binding_id: str) -> bool:
        """Remove the binding and its lookup. False when unknown or another tenant's."""
        response = self._client.get_item(
            TableName=self._table, Key=key(binding_pk(binding_id), _LOOKUP_SK), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None or text(item, "tenant_id") != tenant_id:
            return False
        self._client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self._table, "Key": key(binding_pk(binding_id), _LOOKUP_SK)}},
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": key(agent_pk(tenant_id, text(item, "agent_id")), _PREFIX + binding_id),
                    }
                },
            ]
        )
        return True

    def _unseal(self, item: Item) -> ChannelBinding:
        binding = read_doc(item, ChannelBinding)
        if "sealed" not in item:
            return binding
        plain = self._cipher.decrypt(item["sealed"]["B"], _context(binding))
        secrets: dict[str, str] = json.loads(plain)
        return binding.model_copy(update={"secrets": secrets})


def _context(binding: ChannelBinding) -> dict[str, str]:
    return {"tenant_id": binding.tenant_id, "binding_id": binding.binding_id}
