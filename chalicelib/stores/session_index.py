"""The per-agent session index: one small item per session, so the console lists sessions with a Query.

    pk  T#<tenant>#AS#<agent>      sk  SES#<started_at>#<session_id>

`started_at` is the session's creation time (ISO 8601, UTC, milliseconds), so the sort key
orders a partition by start: a Query with ScanIndexForward=False reads the newest first. The item
holds counters the list shows and filters on (turns, fallbacks, handoffs, the scenarios entered);
each committed turn updates it with ONE Update added to the turn's own transaction
(`session_index_update`), so the index never disagrees with the turn records. Filters are a
FilterExpression on that Query, never a Scan. Erasing an interlocutor deletes its sessions' index
items (`session_index_key`); erasing a tenant removes them with every `T#<tenant>#…` partition.

The channel user id of a phone channel (twilio, whatsapp) is a phone number, PII: the index keeps
its mask ‹phone›, like turn records keep masks instead of PII values.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.session import Session
from chalicelib.domain.turn import TurnRecord
from chalicelib.stores import items as it
from chalicelib.stores.ports import Page, SessionFilter, SessionSummary

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

SK_PREFIX = "SES#"
PHONE_CHANNELS = frozenset({"twilio", "whatsapp"})
PHONE_MASK = "‹phone›"
_QUERY_PAGE = 100  # items read per Query while a filter skips some


def started_at(now_s: float) -> str:
    """A session's creation time as the index sorts it: ISO 8601 UTC with milliseconds."""
    whole = int(now_s)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((now_s - whole) * 1000):03d}Z"


def session_index_pk(tenant_id: str, agent_id: str) -> str:
    return f"{it.tenant_pk(tenant_id)}#AS#{agent_id}"


def session_index_key(session: Session) -> it.Item:
    """The key of a session's index item (for erasing it)."""
    return it.key(session_index_pk(session.key.tenant_id, session.key.agent_id), _sk(session))


def session_index_keys(session_rows: list[it.Item]) -> list[it.Item]:
    """The index key of the session among the items of a session partition (none if it has no state)."""
    return [session_index_key(it.read_doc(row, Session)) for row in session_rows if it.text(row, "sk") == "SESSION"]


def shown_user_id(channel: str, user_id: str) -> str:
    return PHONE_MASK if channel in PHONE_CHANNELS else user_id


def session_index_update(table: str, session: Session, record: TurnRecord) -> TransactWriteItemTypeDef:
    """The Update that counts one committed turn in the session's index item (creating it)."""
    values: dict[str, Any] = {
        ":started": it.s(session.created_at or record.created_at),
        ":last": it.s(record.created_at or session.updated_at),
        ":turns": it.n(session.turn_count),
        ":fallback": it.n(1 if record.outcome.fallback_used else 0),
        ":handoff": it.n(1 if record.outcome.handoff else 0),
        ":channel": it.s(session.key.channel),
        ":user": it.s(shown_user_id(session.key.channel, session.key.user_id)),
        ":session": it.s(session.session_id),
    }
    sets = ["session_id = :session", "started_at = :started", "last_turn_at = :last", "turns = :turns",
            "channel = :channel", "user_id = :user"]
    adds = ["fallbacks :fallback", "handoffs :handoff"]
    scenario = record.outcome.scenario.id if record.outcome.scenario else None
    if scenario:
        values[":scenario"], values[":scenarios"] = it.s(scenario), {"SS": [scenario]}
        sets.append("scenario_id = :scenario")
        adds.append("scenarios :scenarios")
    return {"Update": {
        "TableName": table,
        "Key": session_index_key(session),
        "UpdateExpression": f"SET {', '.join(sets)} ADD {', '.join(adds)}",
        "ExpressionAttributeValues": values,
    }}


class DynamoSessionIndex:
    """SessionIndex (ports.py) on the main table. Raises InvalidInput for a foreign cursor; AWS errors
    become Unavailable (store_edge)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    @it.store_edge
    def list(self, tenant_id: str, agent_id: str, *, limit: int, cursor: str | None = None,
             where: SessionFilter | None = None) -> Page:
        """Up to `limit` SessionSummary newest first, matching `where`; next_cursor continues."""
        pk = session_index_pk(tenant_id, agent_id)
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": it.s(pk), ":prefix": it.s(SK_PREFIX)},
            "ScanIndexForward": False,
            "Limit": max(limit + 1, _QUERY_PAGE),
        }
        _add_filter(params, where or SessionFilter())
        if cursor is not None:
            params["ExclusiveStartKey"] = it.key(pk, _decode_cursor(cursor))
        rows: list[it.Item] = []
        for row in it.query_all(self._client, **params):
            rows.append(row)
            if len(rows) > limit:
                break
        page = rows[:limit]
        next_cursor = _encode_cursor(it.text(page[-1], "sk")) if len(rows) > limit else None
        return Page(items=[_summary(row) for row in page], next_cursor=next_cursor)


def _add_filter(params: dict[str, Any], where: SessionFilter) -> None:
    clauses: list[str] = []
    values: dict[str, Any] = params["ExpressionAttributeValues"]
    if where.fallback is not None:
        clauses.append("fallbacks > :zero" if where.fallback else "fallbacks = :zero")  # ADD wrote 0 or more
    if where.handoff is not None:
        clauses.append("handoffs > :zero" if where.handoff else "handoffs = :zero")
    if where.fallback is not None or where.handoff is not None:
        values[":zero"] = it.n(0)
    if where.scenario:
        clauses.append("contains(scenarios, :scenario)")
        values[":scenario"] = it.s(where.scenario)
    if clauses:
        params["FilterExpression"] = " AND ".join(clauses)


def _summary(row: it.Item) -> SessionSummary:
    return SessionSummary(
        session_id=it.text(row, "session_id"), started_at=it.text(row, "started_at"),
        last_turn_at=it.text(row, "last_turn_at"), turns=it.number(row, "turns"),
        fallbacks=it.number(row, "fallbacks"), handoff=it.number(row, "handoffs") > 0,
        scenario_id=it.text(row, "scenario_id") or None, channel=it.text(row, "channel"),
        user_id=it.text(row, "user_id"),
    )


def _sk(session: Session) -> str:
    return f"{SK_PREFIX}{session.created_at}#{session.session_id}"


def _encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"sk": sk}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        sk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["sk"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput.at("cursor", "is not a cursor this API issued") from None
    if not isinstance(sk, str) or not sk.startswith(SK_PREFIX):
        raise InvalidInput.at("cursor", "is not a cursor this API issued")
    return sk
