"""KmsSecretStore: secrets are stored as KMS ciphertext bound to their tenant and name."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import InvalidInput, Unavailable
from chalicelib.stores.kms_secrets import KmsCipher, KmsSecretStore
from tests.conftest import Aws

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def cipher(any_aws: Aws) -> KmsCipher:
    return KmsCipher(any_aws.kms, any_aws.env["RUCHE_SECRETS_KEY_ID"])


@pytest.fixture
def store(any_aws: Aws, cipher: KmsCipher) -> KmsSecretStore:
    return KmsSecretStore(any_aws.dynamodb, any_aws.table, cipher)


def secret_item(aws: Aws, tenant: str, name: str) -> dict[str, dict[str, bytes]]:
    item: dict[str, dict[str, bytes]] = aws.dynamodb.get_item(
        TableName=aws.table, Key={"pk": {"S": f"T#{tenant}"}, "sk": {"S": f"SECRET#{name}"}}
    )["Item"]
    return item


def test_a_secret_round_trips_and_is_stored_as_ciphertext_only(any_aws: Aws, store: KmsSecretStore) -> None:
    store.put("acme", "openai", SECRET)
    assert store.get("acme", "openai") == SECRET
    item = secret_item(any_aws, "acme", "openai")
    assert SECRET.encode() not in item["ciphertext"]["B"]
    assert SECRET not in str(item)


def test_an_unknown_secret_is_none_and_another_tenant_cannot_read_it(store: KmsSecretStore) -> None:
    store.put("acme", "openai", SECRET)
    assert store.get("acme", "anthropic") is None
    assert store.get("intruder", "openai") is None


def test_a_put_replaces_the_value_and_delete_removes_it(store: KmsSecretStore) -> None:
    store.put("acme", "openai", SECRET)
    store.put("acme", "openai", "rotated")
    assert store.get("acme", "openai") == "rotated"
    assert store.delete("acme", "openai") is True
    assert store.get("acme", "openai") is None
    assert store.delete("acme", "openai") is False


def test_a_ciphertext_moved_to_another_tenant_does_not_decrypt(any_aws: Aws, store: KmsSecretStore) -> None:
    store.put("acme", "openai", SECRET)
    stolen = secret_item(any_aws, "acme", "openai")
    any_aws.dynamodb.put_item(
        TableName=any_aws.table,
        Item={"pk": {"S": "T#intruder"}, "sk": {"S": "SECRET#openai"}, "ciphertext": stolen["ciphertext"]},
    )
    with pytest.raises(Unavailable):
        store.get("intruder", "openai")


def test_a_secret_over_four_kib_is_refused_before_anything_is_written(store: KmsSecretStore) -> None:
    with pytest.raises(InvalidInput):
        store.put("acme", "huge", "x" * 4097)
    assert store.get("acme", "huge") is None


def test_an_unknown_key_makes_encryption_unavailable(any_aws: Aws) -> None:
    cipher = KmsCipher(any_aws.kms, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(Unavailable):
        cipher.encrypt(b"value", {"tenant_id": "acme", "name": "x"})
