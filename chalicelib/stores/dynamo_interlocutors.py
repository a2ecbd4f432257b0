"""Interlocutors in DynamoDB: channel identities, versioned field values, and erasure.

A field is a head item `F#<field>#HEAD` (the current version number) plus one item per version
`F#<field>#V#<version:06d>`. Writing a value moves the head with a condition on the version read,
puts the new version and marks the previous one SUPERSEDED, in one transaction; concurrent writers
of a field therefore leave exactly one ACTIVE version and an intact history. The status lives in
its own attribute (`status`) so superseding never has to read or rewrite the JSON `doc`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import Conflict, NotFound, Unavailable
from chalicelib.domain.ids import new_id
from chalicelib.domain.interlocutor import ChannelIdentity, FieldValue, InterlocutorData, ValueStatus
from chalicelib.stores import items as it
from chalicelib.stores.ports import FieldChange

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

logger = Logger(child=True)

PROFILE_SK = "PROFILE"
IDENTITY_SK = "IDENTITY"
STATUS_ATTRIBUTE = "status"
MAX_WRITE_ATTEMPTS = 10  # each round lets at least one concurrent writer through
_SECONDS_PER_DAY = 86_400.0


def head_sk(name: str) -> str:
    return f"F#{name}#HEAD"


def value_sk(name: str, version: int) -> str:
    return f"F#{name}#V#{version:06d}"


def identity_listing_sk(channel: str, user_id: str) -> str:
    return f"IDENT#{channel}#{user_id}"


def session_listing_sk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def iso(now_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s))


def cancellation_codes(exc: ClientError) -> list[str]:
    """The per-item reason codes of a TransactionCanceledException ('None' where an item was fine)."""
    reasons: list[Any] = exc.response.get("CancellationReasons") or (  # type: ignore[assignment]
        exc.response.get("Error", {}).get("CancellationReasons") or []
    )
    return [str(reason.get("Code", "None")) for reason in reasons]


def is_cancelled(exc: BaseException) -> bool:
    return it.error_code(exc) == "TransactionCanceledException"


def read_field_heads(
    client: DynamoDBClient, table: str, tenant_id: str, interlocutor_id: str, names: list[str]
) -> dict[str, int]:
    """The current version number of each named field (0 for a field never written). One read."""
    pk = it.interlocutor_pk(tenant_id, interlocutor_id)
    unique = sorted(set(names))
    heads = dict.fromkeys(unique, 0)
    for start in range(0, len(unique), 100):  # BatchGetItem takes at most 100 keys
        pending: Any = {
            table: {
                "Keys": [it.key(pk, head_sk(name)) for name in unique[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        while pending:
            response = client.batch_get_item(RequestItems=pending)
            for item in response.get("Responses", {}).get(table, []):
                heads[it.text(item, "field")] = it.number(item, "version")
            pending = response.get("UnprocessedKeys") or None
    return heads


def field_change_items(
    table: str,
    tenant_id: str,
    interlocutor_id: str,
    changes: list[FieldChange],
    *,
    heads: dict[str, int],
    now_s: float,
) -> list[TransactWriteItemTypeDef]:
    """The transaction items that write `changes` on top of `heads` (see read_field_heads).

    The one implementation of supersede, used by write() and by the session commit. Per field: the
    head moves from the version read (condition), the new version is put, the previous one is
    marked SUPERSEDED. Two changes of one field in a list: the last one wins (a transaction may
    touch an item once).
    """
    pk = it.interlocutor_pk(tenant_id, interlocutor_id)
    latest = {change.name: change for change in changes}
    result: list[TransactWriteItemTypeDef] = []
    for name, change in latest.items():
        current = heads.get(name, 0)
        version = current + 1
        expires_at = now_s + change.ttl_days * _SECONDS_PER_DAY if change.ttl_days is not None else None
        value = FieldValue(
            name=name,
            value=change.value,
            version=version,
            source=change.source,
            confidence=change.confidence,
            updated_at=iso(now_s),
            expires_at=expires_at,
        )
        extra = {STATUS_ATTRIBUTE: it.s(ValueStatus.ACTIVE.value)}
        if expires_at is not None:
            extra[it.TTL_ATTRIBUTE] = it.n(int(expires_at) + 1)  # TTL only ever deletes expired values
        result.append(_head_update(table, pk, name, current))
        result.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": it.doc_item(pk, value_sk(name, version), value, **extra),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        if current:
            # No condition: the head condition already serialises writers; an item TTL removed is
            # recreated as a doc-less stub, which readers skip.
            result.append(
                {
                    "Update": {
                        "TableName": table,
                        "Key": it.key(pk, value_sk(name, current)),
                        "UpdateExpression": "SET #st = :superseded",
                        "ExpressionAttributeNames": {"#st": STATUS_ATTRIBUTE},
                        "ExpressionAttributeValues": {":superseded": it.s(ValueStatus.SUPERSEDED.value)},
                    }
                }
            )
    return result


def _head_update(table: str, pk: str, name: str, current: int) -> TransactWriteItemTypeDef:
    condition = "attribute_not_exists(pk)" if current == 0 else "version = :current"
    values = {":next": it.n(current + 1), ":field": it.s(name)}
    if current:
        values[":current"] = it.n(current)
    return {
        "Update": {
            "TableName": table,
            "Key": it.key(pk, head_sk(name)),
            "UpdateExpression": "SET version = :next, #f = :field",
            "ExpressionAttributeNames": {"#f": "field"},
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
    }


def session_listing_item(
    table: str, tenant_id: str, interlocutor_id: str, session_id: str, key_hash: str
) -> TransactWriteItemTypeDef:
    """`SESSION#<id>` under the interlocutor, so erase() finds its sessions and their pointer."""
    item = {
        "pk": it.s(it.interlocutor_pk(tenant_id, interlocutor_id)),
        "sk": it.s(session_listing_sk(session_id)),
        "session_id": it.s(session_id),
        "key_hash": it.s(key_hash),
    }
    return {"Put": {"TableName": table, "Item": item}}


class DynamoInterlocutorStore:
    """InterlocutorStore on the main table (ports.py). Raises Unavailable when DynamoDB fails."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def resolve(self, tenant_id: str, channel: str, user_id: str) -> str:
        """The interlocutor of this identity; created on first contact, exactly once under races."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            found = self._identity_owner(tenant_id, channel, user_id)
            if found is not None:
                return found
            interlocutor_id = new_id("itl")
            pk = it.interlocutor_pk(tenant_id, interlocutor_id)
            profile = {
                "pk": it.s(pk),
                "sk": it.s(PROFILE_SK),
                "interlocutor_id": it.s(interlocutor_id),
                "created_at": it.s(iso(time.time())),
            }
            transaction: list[TransactWriteItemTypeDef] = [
                *self._identity_items(
                    tenant_id, interlocutor_id, channel, user_id, condition="attribute_not_exists(pk)"
                ),
                {"Put": {"TableName": self._table, "Item": profile}},
            ]
            try:
                self._client.transact_write_items(TransactItems=transaction)
            except ClientError as exc:
                if not (is_cancelled(exc) and "ConditionalCheckFailed" in cancellation_codes(exc)):
                    raise Unavailable("could not record the interlocutor") from exc
                continue  # another resolve won the race: read its interlocutor
            except BotoCoreError as exc:
                raise Unavailable("could not record the interlocutor") from exc
            logger.info(
                "interlocutor created", extra={"tenant_id": tenant_id, "interlocutor_id": interlocutor_id}
            )
            return interlocutor_id
        raise Conflict("the identity kept changing while it was resolved", channel=channel)

    def link(self, tenant_id: str, interlocutor_id: str, channel: str, user_id: str) -> None:
        """Map another channel identity to this interlocutor. Conflict if it belongs to another one."""
        pk = it.interlocutor_pk(tenant_id, interlocutor_id)
        transaction: list[TransactWriteItemTypeDef] = [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": it.key(pk, PROFILE_SK),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            *self._identity_items(
                tenant_id,
                interlocutor_id,
                channel,
                user_id,
                condition="attribute_not_exists(pk) OR interlocutor_id = :me",
            ),
        ]
        try:
            self._client.transact_write_items(TransactItems=transaction)
        except ClientError as exc:
            codes = cancellation_codes(exc) if is_cancelled(exc) else []
            if codes and codes[0] == "ConditionalCheckFailed":
                raise NotFound("no such interlocutor", interlocutor_id=interlocutor_id) from exc
            if "ConditionalCheckFailed" in codes:
                raise Conflict(
                    "this channel identity belongs to another interlocutor", channel=channel
                ) from exc
            raise Unavailable("could not link the identity") from exc

    def load(self, tenant_id: str, interlocutor_id: str, now_s: float) -> InterlocutorData | None:
        """Live values only (ACTIVE and not expired, whatever TTL did or did not delete yet)."""
        rows = self._partition(tenant_id, interlocutor_id)
        if not any(it.text(row, "sk") == PROFILE_SK for row in rows):
            return None
        fields: dict[str, FieldValue] = {}
        for value, status in _values(rows):
            if status == ValueStatus.ACTIVE.value and value.is_live(now_s):
                kept = fields.get(value.name)
                if kept is None or kept.version < value.version:
                    fields[value.name] = value
        identities = [
            ChannelIdentity(channel=it.text(row, "channel"), user_id=it.text(row, "user_id"))
            for row in rows
            if it.text(row, "sk").startswith("IDENT#")
        ]
        return InterlocutorData(interlocutor_id=interlocutor_id, fields=fields, identities=identities)

    def history(self, tenant_id: str, interlocutor_id: str, now_s: float | None = None) -> list[FieldValue]:
        """Every stored version, by field then version, with status ACTIVE, SUPERSEDED or EXPIRED."""
        at = time.time() if now_s is None else now_s
        result = []
        for stored, status in _values(self._partition(tenant_id, interlocutor_id)):
            if status == ValueStatus.SUPERSEDED.value:
                stored = stored.model_copy(update={"status": ValueStatus.SUPERSEDED})  # noqa: PLW2901
            elif not stored.is_live(at):
                stored = stored.model_copy(update={"status": ValueStatus.EXPIRED})  # noqa: PLW2901
            result.append(stored)
        return sorted(result, key=lambda value: (value.name, value.version))

    def write(self, tenant_id: str, interlocutor_id: str, changes: list[FieldChange], now_s: float) -> None:
        """Supersede and write in one transaction, re-reading the heads when another writer got there first.

        Raises Conflict after MAX_WRITE_ATTEMPTS lost races, Unavailable when DynamoDB fails.
        """
        if not changes:
            return
        for _ in range(MAX_WRITE_ATTEMPTS):
            heads = self._heads(tenant_id, interlocutor_id, [change.name for change in changes])
            transaction = field_change_items(
                self._table, tenant_id, interlocutor_id, changes, heads=heads, now_s=now_s
            )
            try:
                self._client.transact_write_items(TransactItems=transaction)
                return
            except ClientError as exc:
                codes = cancellation_codes(exc) if is_cancelled(exc) else []
                if not {"ConditionalCheckFailed", "TransactionConflict"} & set(codes):
                    raise Unavailable("could not write interlocutor data") from exc
            except BotoCoreError as exc:
                raise Unavailable("could not write interlocutor data") from exc
        raise Conflict(
            "interlocutor data kept changing while it was written", interlocutor_id=interlocutor_id
        )

    def erase(self, tenant_id: str, interlocutor_id: str) -> bool:
        """Delete values, identities, sessions (turn records, transcripts, pointers). False if unknown.

        Identities go first, so a resolve racing the erase creates a new interlocutor.
        """
        rows = self._partition(tenant_id, interlocutor_id)
        if not rows:
            return False
        try:
            for row in rows:
                sk = it.text(row, "sk")
                if sk.startswith("IDENT#"):
                    self._delete_owned(
                        it.identity_pk(tenant_id, it.text(row, "channel"), it.text(row, "user_id")),
                        IDENTITY_SK,
                        "interlocutor_id",
                        interlocutor_id,
                    )
            for row in rows:
                if it.text(row, "sk").startswith("SESSION#"):
                    session_id = it.text(row, "session_id")
                    self._delete_owned(
                        it.session_key_pk(tenant_id, it.text(row, "key_hash")),
                        "ACTIVE",
                        "session_id",
                        session_id,
                    )
                    session_pk = it.session_pk(tenant_id, session_id)
                    keys = [
                        it.key(session_pk, it.text(item, "sk"))
                        for item in it.partition_items(self._client, self._table, session_pk, consistent=True)
                    ]
                    it.delete_keys(self._client, self._table, keys)
            it.delete_keys(
                self._client, self._table, [it.key(it.text(r, "pk"), it.text(r, "sk")) for r in rows]
            )
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not erase the interlocutor") from exc
        logger.info("interlocutor erased", extra={"tenant_id": tenant_id, "interlocutor_id": interlocutor_id})
        return True

    # --- helpers ---------------------------------------------------------------------------------

    def _identity_items(
        self, tenant_id: str, interlocutor_id: str, channel: str, user_id: str, condition: str
    ) -> list[TransactWriteItemTypeDef]:
        identity = {
            "pk": it.s(it.identity_pk(tenant_id, channel, user_id)),
            "sk": it.s(IDENTITY_SK),
            "interlocutor_id": it.s(interlocutor_id),
        }
        listing = {
            "pk": it.s(it.interlocutor_pk(tenant_id, interlocutor_id)),
            "sk": it.s(identity_listing_sk(channel, user_id)),
            "channel": it.s(channel),
            "user_id": it.s(user_id),
        }
        put: TransactWriteItemTypeDef = {
            "Put": {"TableName": self._table, "Item": identity, "ConditionExpression": condition}
        }
        if ":me" in condition:
            put["Put"]["ExpressionAttributeValues"] = {":me": it.s(interlocutor_id)}
        return [put, {"Put": {"TableName": self._table, "Item": listing}}]

    def _identity_owner(self, tenant_id: str, channel: str, user_id: str) -> str | None:
        try:
            response = self._client.get_item(
                TableName=self._table,
                ConsistentRead=True,
                Key=it.key(it.identity_pk(tenant_id, channel, user_id), IDENTITY_SK),
            )
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read the identity") from exc
        item = response.get("Item")
        return it.text(item, "interlocutor_id") if item else None

    def _delete_owned(self, pk: str, sk: str, owner_attribute: str, owner: str) -> None:
        """Delete an item only while it still points at `owner` (it may have been re-created since)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=it.key(pk, sk),
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": owner_attribute},
                ExpressionAttributeValues={":owner": it.s(owner)},
            )
        except ClientError as exc:
            if not it.is_condition_failure(exc):
                raise

    def _partition(self, tenant_id: str, interlocutor_id: str) -> list[it.Item]:
        pk = it.interlocutor_pk(tenant_id, interlocutor_id)
        try:
            return list(it.partition_items(self._client, self._table, pk, consistent=True))
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read interlocutor data") from exc

    def _heads(self, tenant_id: str, interlocutor_id: str, names: list[str]) -> dict[str, int]:
        try:
            return read_field_heads(self._client, self._table, tenant_id, interlocutor_id, names)
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read interlocutor data") from exc


def _values(rows: list[it.Item]) -> list[tuple[FieldValue, str]]:
    """(value, stored status) of every version item; doc-less stubs are skipped."""
    return [
        (it.read_doc(row, FieldValue), it.text(row, STATUS_ATTRIBUTE))
        for row in rows
        if "#V#" in it.text(row, "sk") and it.DOC_ATTRIBUTE in row
    ]
