"""Usage and insight counters: written inside the turn's own transaction, read back by day range.

Items (ports.py), in USAGE_SHARDS partitions per tenant:

    T#<tenant>#USAGE#<shard>   D#<yyyy-mm-dd>#A#<agent>   one agent's day: usage counters and insights
    T#<tenant>#USAGE#<shard>   M#<yyyy-mm>                the tenant's month: turns and tokens (quotas)

Why counters are exact: they are ADD updates in the TransactWriteItems that commits the turn
(`usage_items`), so a turn that is superseded, stale, or retried under the same Idempotency-Key
commits either everything or nothing, and a commit retried after a TransactionConflict adds once.

Why shards: every turn of a tenant updates its month item, and DynamoDB cancels a transaction that
touches an item another transaction is writing (TransactionConflict), so one item takes roughly
one transactional write per commit latency (~30-50 writes/s), and at most 1,000 WCU/s per
partition. A turn's shard is a hash of its session id: one session's turns are serial anyway, and
concurrent sessions spread over the shards. Readers sum the shards: the month's shards come with the
turn's first batched read (no extra round trip), a day range is one Query per shard.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.domain.turn import TurnRecord
from chalicelib.domain.usage import (
    DateRange,
    DayRow,
    MonthUsage,
    UnmatchedSample,
    scrub_sample,
    tally,
    utc_day,
    utc_month,
)
from chalicelib.stores import items as it

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

USAGE_SHARDS = 8
SAMPLE_SLOTS = 2  # unmatched-turn samples kept per shard and day: at most 16 a day, the first ones win
RETENTION_S = 400 * 86_400  # a year of billing history and a month to spare
MONTH_ATTRIBUTES = ("turns", "tokens")


def usage_pk(tenant_id: str, shard: int) -> str:
    return f"{it.tenant_pk(tenant_id)}#USAGE#{shard}"


def day_sk(day: str, agent_id: str) -> str:
    return f"D#{day}#A#{agent_id}"


def month_sk(month: str) -> str:
    return f"M#{month}"


def shard_of(session_id: str) -> int:
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:4], "big") % USAGE_SHARDS


def usage_items(table: str, record: TurnRecord, now_s: float) -> list[TransactWriteItemTypeDef]:
    """The two counter updates one committed turn adds to its transaction: its agent's day, its
    tenant's month. Pure: builds the updates, writes nothing."""
    shard = shard_of(record.session_id)
    turn = tally(record)
    pk, expires = usage_pk(record.tenant_id, shard), it.n(int(now_s) + RETENTION_S)
    day = _Update()
    day.set("agent_id", it.s(record.agent_id))
    day.set("day", it.s(utc_day(now_s)))
    day.set(it.TTL_ATTRIBUTE, expires, keep=True)
    for name, value in turn.counters.items():
        day.add(name, value)
    day.add("unmatched", int(turn.unmatched))
    for rule_id in turn.applied:
        day.add(f"applied:{rule_id}", 1)
    for rule_id, count in turn.violated.items():
        day.add(f"violated:{rule_id}", count)
    for move in turn.funnel:
        day.add(f"{move.stage}:{move.scenario_id}/{move.step_id}", 1)
    if turn.unmatched:
        slot = int(hashlib.sha256(record.turn_id.encode()).hexdigest(), 16) % SAMPLE_SLOTS
        day.set(f"sample:{slot}", {"M": {
            "turn_id": it.s(record.turn_id), "session_id": it.s(record.session_id),
            "message": it.s(scrub_sample(record.message)), "at": it.s(record.created_at),
        }}, keep=True)  # the first unmatched turn of the slot stays: one update, no list to cap
    month = _Update()
    month.set(it.TTL_ATTRIBUTE, expires, keep=True)
    month.add("turns", 1)
    month.add("tokens", record.prompt_tokens + record.completion_tokens)
    return [day.item(table, pk, day_sk(utc_day(now_s), record.agent_id)),
            month.item(table, pk, month_sk(utc_month(now_s)))]


def month_keys(tenant_id: str, now_s: float) -> list[it.Item]:
    """The keys of the tenant's month items, one per shard: read with the turn's first batch."""
    month = month_sk(utc_month(now_s))
    return [it.key(usage_pk(tenant_id, shard), month) for shard in range(USAGE_SHARDS)]


def month_usage(found: Iterable[it.Item]) -> MonthUsage:
    """The month's turns and tokens summed over the shard items read (missing shards count 0)."""
    items = list(found)
    return MonthUsage(turns=sum(it.number(item, "turns") for item in items),
                      tokens=sum(it.number(item, "tokens") for item in items))


class DynamoUsageStore:
    """Reads the day items back. Raises Unavailable when DynamoDB cannot be read."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    @it.store_edge
    def days(self, tenant_id: str, days: DateRange, agent_id: str | None = None) -> list[DayRow]:
        """One row per (day, agent) with activity, its shards summed, ordered by day then agent."""
        rows: dict[tuple[str, str], DayRow] = {}
        for shard in range(USAGE_SHARDS):
            params: dict[str, Any] = {
                "TableName": self._table,
                "ConsistentRead": True,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
                "ExpressionAttributeValues": {
                    ":pk": it.s(usage_pk(tenant_id, shard)),
                    ":first": it.s(f"D#{days.first.isoformat()}"),
                    ":last": it.s(f"D#{days.last.isoformat()}#~"),  # "~" sorts after "A#<agent>"
                },
            }
            if agent_id is not None:
                params["FilterExpression"] = "agent_id = :agent"
                params["ExpressionAttributeValues"][":agent"] = it.s(agent_id)
            for item in it.query_all(self._client, **params):
                key = (it.text(item, "day"), it.text(item, "agent_id"))
                _merge(rows.setdefault(key, DayRow(date=key[0], agent_id=key[1])), item)
        return [rows[key] for key in sorted(rows)]


    @it.store_edge
    def first_breach(self, tenant_id: str, month: str, limit: str) -> bool:
        """True for the first caller to record that `limit` was reached in `month` (a conditional
        put): the tenant hears of it once per period. Only refused turns pay this round trip."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**it.key(usage_pk(tenant_id, 0), f"Q#{month}#{limit}"),
                      it.TTL_ATTRIBUTE: it.n(int(time.time()) + RETENTION_S)},
                ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if it.is_condition_failure(exc):
                return False
            raise
        return True


def _merge(row: DayRow, item: it.Item) -> None:
    for name, value in item.items():
        if "N" in value and name != it.TTL_ATTRIBUTE:
            row.add(name, int(value["N"]))
        elif name.startswith("sample:") and "M" in value:
            sample = {key: field.get("S", "") for key, field in value["M"].items()}
            row.samples.append(UnmatchedSample(turn_id=sample.get("turn_id", ""),
                                               session_id=sample.get("session_id", ""),
                                               message=sample.get("message", ""), at=sample.get("at", "")))


class _Update:
    """One UpdateItem of a transaction, built clause by clause with placeholder names."""

    def __init__(self) -> None:
        self._sets: list[str] = []
        self._adds: list[str] = []
        self._names: dict[str, str] = {}
        self._values: dict[str, AttributeValueTypeDef] = {}

    def _name(self, attribute: str) -> str:
        placeholder = f"#a{len(self._names)}"
        self._names[placeholder] = attribute
        return placeholder

    def set(self, attribute: str, value: AttributeValueTypeDef, *, keep: bool = False) -> None:
        name, placeholder = self._name(attribute), f":v{len(self._values)}"
        self._values[placeholder] = value
        self._sets.append(f"{name} = if_not_exists({name}, {placeholder})" if keep else f"{name} = {placeholder}")

    def add(self, attribute: str, amount: int) -> None:
        if amount:  # a zero adds nothing; a missing counter reads as 0
            placeholder = f":v{len(self._values)}"
            self._values[placeholder] = it.n(amount)
            self._adds.append(f"{self._name(attribute)} {placeholder}")

    def item(self, table: str, pk: str, sk: str) -> TransactWriteItemTypeDef:
        expression = "SET " + ", ".join(self._sets) + (" ADD " + ", ".join(self._adds) if self._adds else "")
        return {"Update": {"TableName": table, "Key": it.key(pk, sk), "UpdateExpression": expression,
                           "ExpressionAttributeNames": self._names, "ExpressionAttributeValues": self._values}}
