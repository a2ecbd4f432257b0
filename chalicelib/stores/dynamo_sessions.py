"""Sessions in DynamoDB: open by session key, version-checked saves, and the one-transaction turn commit.

Items (ports.py): `T#<t>#SK#<hash>`/`ACTIVE` points at the key's open session; the session lives
at `T#<t>#S#<id>`/`SESSION` with its turn records `TURN#<n:08d>` and transcript
`MSG#<turn:08d>#<index:03d>#<role>` (the index orders several messages of one turn).
"""

from __future__ import annotations

import base64
import json
import random
import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, StaleSession, Unavailable
from chalicelib.domain.ids import new_id
from chalicelib.domain.session import Session, SessionKey, is_open, session_key_hash
from chalicelib.domain.turn import CommittedTurn, TranscriptMessage, TurnCommit, TurnRecord
from chalicelib.stores import items as it
from chalicelib.stores.dynamo_interlocutors import session_listing_item
from chalicelib.stores.dynamo_usage import usage_items
from chalicelib.stores.field_versions import (
    MAX_WRITE_ATTEMPTS,
    RACE_CODES,
    cancellation_codes,
    field_change_items,
    is_cancelled,
    iso,
    read_field_heads,
)
from chalicelib.stores.inbox_items import TurnMarker, answer_items, inbox_pk, turn_marker_sk
from chalicelib.stores.liveness import is_gone, live_checks
from chalicelib.stores.ports import Page
from chalicelib.stores.session_index import session_index_update, started_at

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

logger = Logger(child=True)

SESSION_SK = "SESSION"
POINTER_SK = "ACTIVE"
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's TransactWriteItems limit
DEFAULT_IDLE_TIMEOUT_S = 86_400.0




def turn_sk(turn_number: int) -> str:
    return f"TURN#{turn_number:08d}"


def message_sk(turn_number: int, index: int, role: str) -> str:
    return f"MSG#{turn_number:08d}#{index:03d}#{role}"


class DynamoSessionStore:
    """SessionStore on the main table (ports.py). Raises StaleSession, Conflict, InvalidInput, Unavailable."""

    def __init__(self, client: DynamoDBClient, table: str, *, retention_days: float = 180.0) -> None:
        self._client, self._table = client, table
        self._retention_s = retention_days * 86_400.0  # TTL of turn records and transcripts

    def open(
        self,
        key: SessionKey,
        interlocutor_id: str,
        now_s: float,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> Session:
        """The key's open session, or a new one when there is none, it ENDED, or it sat idle too long.

        Two racing opens end with one session: the pointer is replaced only from what was read.
        """
        tenant_id, key_hash = key.tenant_id, session_key_hash(key)
        pointer_key = it.key(it.session_key_pk(tenant_id, key_hash), POINTER_SK)
        for _ in range(MAX_WRITE_ATTEMPTS):
            pointer = self._get(pointer_key)
            old_id = it.text(pointer, "session_id") if pointer else None
            if old_id:
                current = self.get(tenant_id, old_id)
                if current is not None and is_open(current, now_s, idle_timeout_s):
                    return current
            session = Session(
                session_id=new_id("ses"),
                key=key,
                interlocutor_id=interlocutor_id,
                created_at=started_at(now_s),  # milliseconds: the session index sorts by it
                updated_at=iso(now_s),
                last_activity_s=now_s,
            )
            opening = [
                self._pointer_put(key, session.session_id, old_id),
                self._session_put(session, expected_version=0, version=0),
                session_listing_item(self._table, tenant_id, interlocutor_id, session.session_id, key_hash),
                *live_checks(self._table, tenant_id, key.agent_id),  # never under a deleted tenant or agent
            ]
            try:
                self._transact(opening)
            except ClientError as exc:
                if is_gone(exc, opening):
                    raise NotFound("the agent or its tenant was deleted", agent_id=key.agent_id) from exc
                if RACE_CODES & set(cancellation_codes(exc)):
                    continue  # another open replaced the pointer first (or is doing so): use its session
                raise Unavailable("could not open the session") from exc
            logger.info("session opened", extra={"tenant_id": tenant_id, "session_id": session.session_id})
            return session
        raise Conflict("the session kept changing while it was opened")

    def get(self, tenant_id: str, session_id: str) -> Session | None:
        item = self._get(it.key(it.session_pk(tenant_id, session_id), SESSION_SK))
        return it.read_doc(item, Session) if item else None

    def save(self, session: Session, expected_version: int) -> None:
        """Write a state change outside a turn as version expected_version + 1. Raises StaleSession."""
        try:
            self._transact([self._session_put(session, expected_version, expected_version + 1)])
        except ClientError as exc:
            if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                raise StaleSession("the session moved on", session_id=session.session_id) from exc
            raise Unavailable("could not save the session") from exc

    def commit(self, commit: TurnCommit) -> None:
        """Session, turn record, transcript, field values and usage counters in ONE TransactWriteItems.

        The session is written as version expected_version + 1 and, when the commit carries the
        session lock's fencing token, records it as the session's `fence`. Raises StaleSession
        (nothing written) when the stored version is not expected_version, or when a turn holding a
        higher token committed first (reason "lock_taken_over"); NotFound (nothing written) when
        the agent or its tenant was deleted meanwhile; InvalidInput when the turn needs
        more than 100 items; Conflict when the interlocutor's fields kept moving.
        """
        session, tenant_id = commit.session, commit.session.key.tenant_id
        names = [change.name for change in commit.field_changes]
        known_heads = commit.field_heads
        for attempt in range(MAX_WRITE_ATTEMPTS):
            if attempt:  # concurrent turns share usage counter items: spread the retries out
                time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 - jitter, not security
            if known_heads is not None:  # read with the turn's data: no extra round trip
                heads, known_heads = {name: known_heads.get(name, 0) for name in names}, None
            else:
                heads = self._heads(tenant_id, session.interlocutor_id, names) if names else {}
            transaction = self._commit_items(commit, heads)
            try:
                self._transact(transaction)
                return
            except ClientError as exc:
                if is_gone(exc, transaction):  # stores/liveness.py: the agent or tenant was deleted
                    raise NotFound("the agent or its tenant was deleted", agent_id=session.key.agent_id) from exc
                codes = cancellation_codes(exc)
                stored_fence = _stored_fence(exc) if codes[:1] == ["ConditionalCheckFailed"] else None
                if commit.fence is not None and stored_fence is not None and stored_fence > commit.fence:
                    # Checked first: the root cause, whatever else (version, inbox) moved on with it.
                    logger.warning("turn refused: its session lock expired and a newer turn committed", extra={
                        "tenant_id": tenant_id, "session_id": session.session_id,
                        "fence": commit.fence, "stored_fence": stored_fence})
                    raise StaleSession("a newer turn took the session lock over and committed",
                                       session_id=session.session_id, reason="lock_taken_over") from exc
                if _answer_failed(transaction, codes):  # checked first: the session moved on for it too
                    raise StaleSession("its messages were answered by another turn", session_id=session.session_id,
                                       reason="already_answered") from exc
                if codes[:1] == ["ConditionalCheckFailed"]:
                    raise StaleSession("the session moved on", session_id=session.session_id) from exc
                if "TransactionConflict" not in codes and not (names and RACE_CODES & set(codes)):
                    raise Unavailable("could not commit the turn") from exc
        raise Conflict("interlocutor data kept changing while the turn committed", session_id=session.session_id)

    def turns(self, tenant_id: str, session_id: str, limit: int = 50, cursor: str | None = None) -> Page:
        """Turn records oldest first (the newest last), `limit` per page; next_cursor continues."""
        if limit < 1:
            raise InvalidInput.at("limit", "must be at least 1")
        params: dict[str, object] = {
            "TableName": self._table,
            "Limit": limit + 1,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": it.s(it.session_pk(tenant_id, session_id)),
                ":prefix": it.s("TURN#"),
            },
        }
        if cursor is not None:
            params["ExclusiveStartKey"] = it.key(it.session_pk(tenant_id, session_id), _decode_cursor(cursor))
        rows: list[it.Item] = []
        try:
            for row in it.query_all(self._client, **params):
                rows.append(row)
                if len(rows) > limit:
                    break
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read turn records") from exc
        page = rows[:limit]
        next_cursor = _encode_cursor(it.text(page[-1], "sk")) if len(rows) > limit else None
        return Page(items=[it.read_doc(row, TurnRecord) for row in page], next_cursor=next_cursor)

    def messages(self, tenant_id: str, session_id: str, after: str | None = None) -> list[TranscriptMessage]:
        """The transcript oldest first; with `after`, only what follows that message (all if unknown)."""
        pk = it.session_pk(tenant_id, session_id)
        try:
            rows = list(it.partition_items(self._client, self._table, pk, "MSG#", consistent=True))
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read the transcript") from exc
        found = [
            TranscriptMessage(
                message_id=it.text(row, "message_id"),
                role=it.text(row, "role"),
                text=it.text(row, "text"),
                created_at=it.text(row, "created_at"),
            )
            for row in rows
        ]
        ids = [message.message_id for message in found]
        if after is not None and after in ids:
            return found[ids.index(after) + 1 :]
        return found

    def committed_turn(self, key: SessionKey, turn_id: str) -> CommittedTurn | None:
        """The turn committed under turn_id (its marker in the key's inbox partition), if any."""
        marker = self._get(it.key(inbox_pk(key.tenant_id, session_key_hash(key)), turn_marker_sk(turn_id)))
        if marker is None:
            return None
        return CommittedTurn(session_id=it.text(marker, "session_id"), turn_number=it.number(marker, "turn_number"))

    def reply_of(self, tenant_id: str, session_id: str, turn_number: int) -> str | None:
        """The agent's message in that turn's transcript (one Query of the turn's few messages)."""
        prefix = f"MSG#{turn_number:08d}#"
        try:
            rows = list(it.partition_items(self._client, self._table, it.session_pk(tenant_id, session_id), prefix,
                                           consistent=True))
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read the transcript") from exc
        replies = [it.text(row, "text") for row in rows if it.text(row, "role") == "agent"]
        return replies[-1] if replies else None

    # --- items -----------------------------------------------------------------------------------

    def _commit_items(self, commit: TurnCommit, heads: dict[str, int]) -> list[TransactWriteItemTypeDef]:
        session, record = commit.session, commit.record
        tenant_id, session_pk = (
            session.key.tenant_id,
            it.session_pk(session.key.tenant_id, session.session_id),
        )
        expires = it.n(int(commit.now_s + self._retention_s))
        result: list[TransactWriteItemTypeDef] = [
            self._session_put(session, commit.expected_version, commit.expected_version + 1, fence=commit.fence),
            {
                "Put": {
                    "TableName": self._table,
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "Item": it.doc_item(session_pk, turn_sk(record.turn_number), record, **{it.TTL_ATTRIBUTE: expires}),
                }
            },
        ]
        if commit.expected_version == 0:  # a session never opened through open() gets listed too
            result.append(
                session_listing_item(
                    self._table,
                    tenant_id,
                    session.interlocutor_id,
                    session.session_id,
                    session_key_hash(session.key),
                )
            )
        result.append(session_index_update(self._table, session, record))  # the console's session list
        for index, message in enumerate(commit.transcript):
            item = {
                "pk": it.s(session_pk),
                "sk": it.s(message_sk(record.turn_number, index, message.role)),
                "message_id": it.s(message.message_id),
                "role": it.s(message.role),
                "text": it.s(message.text),
                "created_at": it.s(message.created_at),
                it.TTL_ATTRIBUTE: expires,
            }
            result.append({"Put": {"TableName": self._table, "Item": item}})
        result += field_change_items(
            self._table,
            it.interlocutor_pk(tenant_id, session.interlocutor_id),
            commit.field_changes,
            heads=heads,
            now_s=commit.now_s,
        )
        result += live_checks(self._table, tenant_id, session.key.agent_id)  # stores/liveness.py
        result += usage_items(self._table, record, commit.now_s)  # counters commit with the turn, or not at all
        marker = TurnMarker(turn_id=record.turn_id, session_id=session.session_id, turn_number=record.turn_number,
                            expires_at=int(commit.now_s + self._retention_s))
        result += answer_items(self._table, tenant_id, session_key_hash(session.key), message_ids=commit.answered,
                               marker=marker)
        if len(result) > MAX_TRANSACTION_ITEMS:
            raise InvalidInput.at(
                "transcript",
                f"the turn needs {len(result)} writes; one DynamoDB transaction holds at most {MAX_TRANSACTION_ITEMS}",
            )
        return result

    def _session_put(self, session: Session, expected_version: int, version: int,
                     fence: int | None = None) -> TransactWriteItemTypeDef:
        """The version-checked Put of the session; with a fencing token, fenced as well.

        Without a token the session keeps the fence it was read with (a Put replaces the whole
        item: dropping it would let a stale lock holder commit after a status change).
        """
        stored = session.model_copy(update={"version": version, "fence": session.fence if fence is None else fence})
        pk = it.session_pk(session.key.tenant_id, session.session_id)
        condition = "#v = :expected" if expected_version else "(attribute_not_exists(pk) OR #v = :expected)"
        names = {"#v": "version"}
        values = {":expected": it.n(expected_version)}
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self._table,
                "Item": it.doc_item(pk, SESSION_SK, stored, version=it.n(version), fence=it.n(stored.fence)),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        if fence is not None:
            # Classic fencing, in the commit's own transaction (no extra round trip): the session
            # takes no turn from a lock older than the newest that committed. ALL_OLD hands the
            # stored fence back on failure, telling a lost lock from a session that moved on.
            put["Put"]["ConditionExpression"] = f"{condition} AND (attribute_not_exists(#f) OR #f <= :fence)"
            names["#f"] = "fence"
            values[":fence"] = it.n(fence)
            put["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return put

    def _pointer_put(self, key: SessionKey, session_id: str, old_id: str | None) -> TransactWriteItemTypeDef:
        item = {
            "pk": it.s(it.session_key_pk(key.tenant_id, session_key_hash(key))),
            "sk": it.s(POINTER_SK),
            "session_id": it.s(session_id),
        }
        if old_id is None:
            return {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        return {
            "Put": {
                "TableName": self._table,
                "Item": item,
                "ConditionExpression": "session_id = :old",
                "ExpressionAttributeValues": {":old": it.s(old_id)},
            }
        }

    # --- calls -----------------------------------------------------------------------------------

    def _transact(self, transaction: list[TransactWriteItemTypeDef]) -> None:
        """Runs the transaction; a cancelled one is re-raised (callers read its reasons), else Unavailable."""
        try:
            self._client.transact_write_items(TransactItems=transaction)
        except ClientError as exc:
            if is_cancelled(exc):
                raise
            raise Unavailable("DynamoDB refused the write") from exc
        except BotoCoreError as exc:
            raise Unavailable("DynamoDB could not be reached") from exc

    def _get(self, key: it.Item) -> it.Item | None:
        try:
            return self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read the session") from exc

    def _heads(self, tenant_id: str, interlocutor_id: str, names: list[str]) -> dict[str, int]:
        try:
            return read_field_heads(self._client, self._table, tenant_id, interlocutor_id, names)
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read interlocutor data") from exc


def _stored_fence(exc: ClientError) -> int | None:
    """The session's stored fence handed back by a failed commit (the session Put comes first)."""
    reasons: list[Any] = exc.response.get("CancellationReasons") or (  # type: ignore[assignment]
        exc.response.get("Error", {}).get("CancellationReasons") or []
    )
    item = reasons[0].get("Item") if reasons and isinstance(reasons[0], dict) else None
    return it.number(item, "fence") if item else None


def _answer_failed(transaction: list[TransactWriteItemTypeDef], codes: list[str]) -> bool:
    """True when the condition of an inbox delete or of the turn marker failed (inbox_items.py)."""
    for item, code in zip(transaction, codes, strict=False):
        if code != "ConditionalCheckFailed":
            continue
        if "Delete" in item:
            pk = item["Delete"]["Key"]["pk"]
        elif "Put" in item:
            pk = item["Put"]["Item"]["pk"]
        else:
            continue
        if isinstance(pk, dict) and "#INBOX#" in str(pk.get("S", "")):
            return True
    return False




def _encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"sk": sk}).encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        sk = json.loads(base64.urlsafe_b64decode(cursor.encode()))["sk"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput.at("cursor", "is not a cursor this API returned") from exc
    if not isinstance(sk, str) or not sk.startswith("TURN#"):
        raise InvalidInput.at("cursor", "is not a cursor this API returned")
    return sk
