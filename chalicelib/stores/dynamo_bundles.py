"""Versioned agent bundles in DynamoDB: publish writes the parts, then flips the head conditionally.

    T#<tenant>             AGENT#<agent>                  head: `version` (the latest)
    T#<tenant>#A#<agent>   V#<version:08d>#META           the version's commit marker and summary
    T#<tenant>#A#<agent>   V#<version:08d>#<nonce>#D#<n>  the bundle JSON, zlib, in ≤ 300 KB slices
    T#<tenant>#A#<agent>   V#<version:08d>#<nonce>#E#<n>  embeddings as float32 bytes, in slices

Two publishes racing from the same base both write parts for the same version number, so parts
carry a per-publish nonce. The head update and the META put happen in ONE transaction that
requires the head to still be at the base version: exactly one racer commits, and META names the
winner's nonce. A version without META (a loser, or a publish that crashed) is never served; the
loser deletes its parts. One Query on `V#<version>#` loads a whole version.
"""

from __future__ import annotations

import json
import secrets
import sys
import zlib
from array import array
from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools import Logger

from chalicelib.domain.bundle import AgentBundle, NewVersion, PublishedBundle
from chalicelib.domain.errors import Conflict, InvalidInput
from chalicelib.domain.ids import now_iso
from chalicelib.stores.items import (
    agent_pk,
    delete_keys,
    key,
    n,
    number,
    partition_items,
    put_items,
    s,
    store_edge,
    tenant_pk,
    text,
)
from chalicelib.stores.ports import VersionInfo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.stores.items import Item

logger = Logger(child=True)

SLICE_BYTES = 300_000  # DynamoDB items stop at 400 KB; keys and attribute names need room too
_HEAD_PREFIX = "AGENT#"
DELETED_ATTRIBUTE = "deleted"  # on a head: the agent was deleted; the head keeps its last version


def head_sk(agent_id: str) -> str:
    """The agent's head item under the tenant partition: it names the latest version."""
    return f"{_HEAD_PREFIX}{agent_id}"


_head_sk = head_sk


def _version_prefix(version: int) -> str:
    return f"V#{version:08d}#"


class _Head(NamedTuple):
    """The agent's head item as read: its version (None: never published), and whether the agent
    was deleted (the number stays, so versions never restart)."""

    version: int | None
    deleted: bool

    @property
    def live(self) -> int | None:
        return None if self.deleted else self.version


class DynamoBundleStore:
    """BundleStore on the main table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    @store_edge
    def publish(self, tenant_id: str, agent_id: str, new: NewVersion, *, expected_version: int | None = None) -> int:
        """Write a new version and return its number.

        Raises Conflict when expected_version is given and is not the latest, or when another
        publish committed first; nothing of this publish is then visible.
        """
        head = self._head(tenant_id, agent_id)
        if expected_version is not None and expected_version != head.live:
            raise Conflict("the agent changed since that version", agent_id=agent_id, latest_version=head.live)
        # Numbers never restart, even after a delete: a container caching (agent, version) must never
        # be handed another bundle under a number it has seen.
        version = (head.version or 0) + 1
        nonce = secrets.token_hex(6)
        pk = agent_pk(tenant_id, agent_id)
        bundle = new.bundle
        parts = _parts(pk, _version_prefix(version) + nonce + "#", bundle, new.vectors, new.source)
        put_items(self._client, self._table, parts)
        meta = key(pk, _version_prefix(version) + "META")
        meta.update(
            nonce=s(nonce),
            published_at=s(now_iso()),
            embedding_model=s(new.embedding_model),
            rules=n(len(bundle.rules)),
            scenarios=n(len(bundle.scenarios)),
            parts=n(len(parts)),
        )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Update": _flip_head(self._table, tenant_id, agent_id, head, version)},
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": meta,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except self._client.exceptions.TransactionCanceledException as exc:
            delete_keys(self._client, self._table, [key(pk, text(part, "sk")) for part in parts])
            raise Conflict("another publish of this agent committed first", agent_id=agent_id) from exc
        logger.info(
            "bundle published",
            extra={"tenant_id": tenant_id, "agent_id": agent_id, "version": version, "parts": len(parts)},
        )
        return version

    @store_edge
    def latest_version(self, tenant_id: str, agent_id: str) -> int | None:
        return self._head(tenant_id, agent_id).live

    def _head(self, tenant_id: str, agent_id: str) -> _Head:
        """(None, False) when never published."""
        item = self._client.get_item(
            TableName=self._table, Key=key(tenant_pk(tenant_id), _head_sk(agent_id)), ConsistentRead=True
        ).get("Item")
        if item is None:
            return _Head(None, deleted=False)
        return _Head(number(item, "version"), deleted=DELETED_ATTRIBUTE in item)

    @store_edge
    def load(self, tenant_id: str, agent_id: str, version: int | None = None) -> PublishedBundle | None:
        """The published version (the latest when None), or None when it does not exist or was deleted.

        One Query for a given version; a GetItem of the head first for the latest.
        """
        if version is None:
            version = self.latest_version(tenant_id, agent_id)
            if version is None:
                return None
        items = list(
            partition_items(
                self._client,
                self._table,
                agent_pk(tenant_id, agent_id),
                _version_prefix(version),
                consistent=True,
            )
        )
        return _assemble(tenant_id, agent_id, version, items)

    @store_edge
    def versions(self, tenant_id: str, agent_id: str) -> list[VersionInfo]:
        """The history, oldest first: every committed version still stored."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :v)",
            "FilterExpression": "attribute_exists(nonce)",
            "ProjectionExpression": "sk, #at, #r, #s",
            "ExpressionAttributeNames": {"#at": "published_at", "#r": "rules", "#s": "scenarios"},
            "ExpressionAttributeValues": {":pk": s(agent_pk(tenant_id, agent_id)), ":v": s("V#")},
        }
        found: list[VersionInfo] = []
        while True:
            page = self._client.query(**params)
            found.extend(
                VersionInfo(
                    version=int(text(item, "sk").split("#")[1]),
                    published_at=text(item, "published_at"),
                    rules=number(item, "rules"),
                    scenarios=number(item, "scenarios"),
                )
                for item in page.get("Items", [])
            )
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @store_edge
    def list_agents(self, tenant_id: str) -> list[tuple[str, int]]:
        """(agent_id, latest_version) of every live agent of the tenant, by agent id."""
        heads = partition_items(self._client, self._table, tenant_pk(tenant_id), _HEAD_PREFIX)
        return [(text(item, "sk").removeprefix(_HEAD_PREFIX), number(item, "version")) for item in heads
                if DELETED_ATTRIBUTE not in item]

    @store_edge
    def delete(self, tenant_id: str, agent_id: str) -> bool:
        """Mark the head deleted (load then answers None) and erase every version. False when absent.

        The head stays as a tombstone holding the last version number, so a later publish continues
        the numbering. Channel bindings, which share the agent partition, are left to the binding store.
        """
        try:
            self._client.update_item(
                TableName=self._table, Key=key(tenant_pk(tenant_id), _head_sk(agent_id)),
                UpdateExpression="SET #d = :yes",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#d)",
                ExpressionAttributeNames={"#d": DELETED_ATTRIBUTE}, ExpressionAttributeValues={":yes": n(1)},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        pk = agent_pk(tenant_id, agent_id)
        stored = [key(pk, text(item, "sk")) for item in partition_items(self._client, self._table, pk, "V#")]
        delete_keys(self._client, self._table, stored)
        logger.info(
            "agent deleted", extra={"tenant_id": tenant_id, "agent_id": agent_id, "items": len(stored)}
        )
        return True


def _flip_head(table: str, tenant_id: str, agent_id: str, base: _Head, version: int) -> Any:
    """The conditional head update: the head must still be where this publish started (a delete
    racing the publish moves it, so a deleted agent is never brought back by an older publish)."""
    if base.version is None:
        still_at_base = "attribute_not_exists(pk)"
    else:
        still_at_base = f"#v = :base AND {'attribute_exists' if base.deleted else 'attribute_not_exists'}(#d)"
    values: dict[str, Any] = {":version": n(version)}
    if base.version is not None:
        values[":base"] = n(base.version)
    return {
        "TableName": table,
        "Key": key(tenant_pk(tenant_id), _head_sk(agent_id)),
        "UpdateExpression": "SET #v = :version REMOVE #d",
        "ConditionExpression": still_at_base,
        "ExpressionAttributeNames": {"#v": "version", "#d": DELETED_ATTRIBUTE},
        "ExpressionAttributeValues": values,
    }


def _parts(pk: str, prefix: str, bundle: AgentBundle, vectors: dict[str, list[float]],
           source: str | None = None) -> list[Item]:
    """The items of one version: the compressed bundle, the compressed source document as published
    (when there is one) and the embeddings, each sliced under SLICE_BYTES. All share the version's
    prefix, so the one Query that loads a version loads its source too."""
    document = zlib.compress(bundle.model_dump_json().encode(), 1)
    parts = [_part(pk, f"{prefix}D#{index:04d}", data) for index, data in enumerate(_slices(document))]
    if source is not None:
        written = zlib.compress(source.encode("utf-8"), 6)
        parts += [_part(pk, f"{prefix}S#{index:04d}", data) for index, data in enumerate(_slices(written))]
    if vectors:
        names = list(vectors)
        dimensions = {len(vectors[name]) for name in names}
        if len(dimensions) != 1:
            raise InvalidInput.at("vectors", "every vector of a version must have the same dimensions")
        width = dimensions.pop() * 4
        per_slice = max(1, SLICE_BYTES // max(width, 1))
        for index, start in enumerate(range(0, len(names), per_slice)):
            chunk = names[start : start + per_slice]
            floats = array("f", [value for name in chunk for value in vectors[name]])
            if sys.byteorder != "little":  # pragma: no cover - stored little-endian on big-endian hosts too
                floats.byteswap()
            part = _part(pk, f"{prefix}E#{index:04d}", floats.tobytes())
            part["names"] = s(json.dumps(chunk))
            parts.append(part)
    return parts


def _part(pk: str, sk: str, data: bytes) -> Item:
    item = key(pk, sk)
    item["data"] = {"B": data}
    return item


def _slices(data: bytes) -> list[bytes]:
    return [data[start : start + SLICE_BYTES] for start in range(0, len(data), SLICE_BYTES)]


def _assemble(tenant_id: str, agent_id: str, version: int, items: list[Item]) -> PublishedBundle | None:
    """The committed version from its Query result; None without a commit marker or with parts missing."""
    meta = next((item for item in items if text(item, "sk").endswith("#META")), None)
    if meta is None:
        return None
    prefix = _version_prefix(version) + text(meta, "nonce") + "#"
    document, written, vector_parts = bytearray(), bytearray(), []
    count = 0
    for item in sorted(items, key=lambda item: text(item, "sk")):  # slices in order
        sk = text(item, "sk")
        if not sk.startswith(prefix):
            continue  # META, or a losing publish's leftovers
        count += 1
        if sk[len(prefix) :].startswith("D#"):
            document += item["data"]["B"]
        elif sk[len(prefix) :].startswith("S#"):
            written += item["data"]["B"]
        else:
            vector_parts.append(item)
    if count != number(meta, "parts"):
        logger.warning(
            "bundle version incomplete",
            extra={"tenant_id": tenant_id, "agent_id": agent_id, "version": version},
        )
        return None
    bundle = AgentBundle.model_validate_json(zlib.decompress(bytes(document)))
    return PublishedBundle(
        tenant_id=tenant_id,
        agent_id=agent_id,
        version=version,
        bundle=bundle,
        published_at=text(meta, "published_at"),
        embedding_model=text(meta, "embedding_model"),
        vectors=_vectors(vector_parts),
        source=zlib.decompress(bytes(written)).decode("utf-8") if written else None,
    )


def _vectors(parts: list[Item]) -> dict[str, list[float]]:
    vectors: dict[str, list[float]] = {}
    for part in parts:
        names: list[str] = json.loads(text(part, "names"))
        floats = array("f")
        floats.frombytes(part["data"]["B"])
        if sys.byteorder != "little":  # pragma: no cover - big-endian hosts only
            floats.byteswap()
        width = len(floats) // len(names)
        values = floats.tolist()
        for index, name in enumerate(names):
            vectors[name] = values[index * width : (index + 1) * width]
    return vectors
