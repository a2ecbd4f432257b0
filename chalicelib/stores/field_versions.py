"""Versioned interlocutor field values: the transaction items that supersede, shared by every writer.

A field is a head item `F#<field>#HEAD` (the current version number) plus one item per version
`F#<field>#V#<version:06d>`. Writing a value moves the head with a condition on the version read,
puts the new version and marks the previous one SUPERSEDED, in one transaction; concurrent writers
of a field therefore leave exactly one ACTIVE version and an intact history. The status lives in
its own attribute (`status`) so superseding never has to read or rewrite the JSON `doc`. Used by
DynamoInterlocutorStore.write() and by the session commit: one implementation of supersede.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.domain.interlocutor import FieldChange, FieldValue, ValueStatus
from chalicelib.stores import items as it

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

STATUS_ATTRIBUTE = "status"
LIVE_ATTRIBUTE = "live"  # on the PROFILE item: field name -> the ACTIVE FieldValue as JSON
PROFILE_SK = "PROFILE"
MAX_WRITE_ATTEMPTS = 10  # each round lets at least one concurrent writer through
# A lost race: a condition on what was read failed, or DynamoDB cancelled a transaction that
# collided with another one in flight on the same item. Both mean: re-read and try again.
RACE_CODES = frozenset({"ConditionalCheckFailed", "TransactionConflict"})
_SECONDS_PER_DAY = 86_400.0


def head_sk(name: str) -> str:
    return f"F#{name}#HEAD"


def value_sk(name: str, version: int) -> str:
    return f"F#{name}#V#{version:06d}"


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
    pk: str,
    changes: list[FieldChange],
    *,
    heads: dict[str, int],
    now_s: float,
) -> list[TransactWriteItemTypeDef]:
    """The transaction items that write `changes` on top of `heads` (see read_field_heads) in the
    interlocutor partition `pk` (items.interlocutor_pk).

    The one implementation of supersede, used by write() and by the session commit. Per field: the
    head moves from the version read (condition), the new version is put, the previous one is
    marked SUPERSEDED. Two changes of one field in a list: the last one wins (a transaction may
    touch an item once).
    """
    latest = {change.name: change for change in changes}
    result: list[TransactWriteItemTypeDef] = []
    live: dict[str, FieldValue] = {}
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
        live[name] = value
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
    if live:
        result.append(_live_update(table, pk, live))
    return result


def _live_update(table: str, pk: str, live: dict[str, FieldValue]) -> TransactWriteItemTypeDef:
    """The new ACTIVE values copied into the PROFILE item, so one GetItem serves a turn's data.

    No condition of its own: the head conditions of the same transaction serialise writers.
    """
    names = {f"#f{index}": name for index, name in enumerate(live)}
    values = {f":v{index}": it.s(value.model_dump_json()) for index, value in enumerate(live.values())}
    assignments = ", ".join(f"{LIVE_ATTRIBUTE}.#f{index} = :v{index}" for index in range(len(live)))
    return {
        "Update": {
            "TableName": table,
            "Key": it.key(pk, PROFILE_SK),
            "UpdateExpression": f"SET {assignments}",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def live_values(profile: it.Item, now_s: float) -> dict[str, FieldValue]:
    """The live (ACTIVE, unexpired) values kept in a PROFILE item's `live` map."""
    stored = profile.get(LIVE_ATTRIBUTE, {}).get("M", {})
    values = {name: FieldValue.model_validate_json(entry["S"]) for name, entry in stored.items()}
    return {name: value for name, value in values.items() if value.is_live(now_s)}


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


def stored_values(rows: list[it.Item]) -> list[tuple[FieldValue, str]]:
    """(value, stored status) of every version item among rows; doc-less stubs are skipped."""
    return [
        (it.read_doc(row, FieldValue), it.text(row, STATUS_ATTRIBUTE))
        for row in rows
        if "#V#" in it.text(row, "sk") and it.DOC_ATTRIBUTE in row
    ]
