"""Tenant secrets encrypted with KMS: the table holds ciphertext only, bound to (tenant, name).

The KMS key is the stack's `SecretsKey` (output RUCHE_SECRETS_KEY_ID, infra/deploy.py). The
encryption context names the tenant and the secret, so a ciphertext copied to another tenant's
item, or under another name, does not decrypt. Values are never logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import InvalidInput, Unavailable
from chalicelib.stores.items import key, s, store_edge, tenant_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient

# KMS Encrypt takes at most 4 KiB of plaintext; secrets (tokens, API keys) are far smaller.
MAX_PLAINTEXT_BYTES = 4096


class KmsCipher:
    """Encrypt and decrypt small values with one KMS key under an encryption context."""

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._client, self._key_id = client, key_id

    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        """The ciphertext blob. Raises InvalidInput over 4 KiB, Unavailable when KMS fails."""
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise InvalidInput.at("value", f"a secret holds at most {MAX_PLAINTEXT_BYTES} bytes")
        try:
            response = self._client.encrypt(
                KeyId=self._key_id, Plaintext=plaintext, EncryptionContext=context
            )
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("the secrets key could not encrypt") from exc
        return response["CiphertextBlob"]

    def decrypt(self, ciphertext: bytes, context: dict[str, str]) -> bytes:
        """The plaintext. Raises Unavailable when KMS refuses (wrong context, key gone, outage)."""
        try:
            response = self._client.decrypt(
                CiphertextBlob=ciphertext, EncryptionContext=context, KeyId=self._key_id
            )
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("the secrets key could not decrypt") from exc
        return response["Plaintext"]


def _secret_sk(name: str) -> str:
    return f"SECRET#{name}"


class KmsSecretStore:
    """SecretStore: item `T#<tenant>` / `SECRET#<name>` holding the KMS ciphertext only."""

    def __init__(self, client: DynamoDBClient, table: str, cipher: KmsCipher) -> None:
        self._client, self._table, self._cipher = client, table, cipher

    @store_edge
    def put(self, tenant_id: str, name: str, value: str) -> None:
        """Store (or replace) a secret. Raises InvalidInput when too large, Unavailable on KMS failure."""
        blob = self._cipher.encrypt(value.encode(), _context(tenant_id, name))
        item = key(tenant_pk(tenant_id), _secret_sk(name))
        item["ciphertext"] = {"B": blob}
        item["tenant_id"] = s(tenant_id)
        self._client.put_item(TableName=self._table, Item=item)

    @store_edge
    def get(self, tenant_id: str, name: str) -> str | None:
        """The secret's value, or None when the tenant has no secret of that name."""
        response = self._client.get_item(
            TableName=self._table, Key=key(tenant_pk(tenant_id), _secret_sk(name)), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        return self._cipher.decrypt(item["ciphertext"]["B"], _context(tenant_id, name)).decode()

    @store_edge
    def delete(self, tenant_id: str, name: str) -> bool:
        """Remove a secret; False when there was none."""
        response = self._client.delete_item(
            TableName=self._table, Key=key(tenant_pk(tenant_id), _secret_sk(name)), ReturnValues="ALL_OLD"
        )
        return "Attributes" in response


def _context(tenant_id: str, name: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "name": name}
