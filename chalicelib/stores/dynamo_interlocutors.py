"""Interlocutors in DynamoDB: channel identities, live field values, history, and erasure.

Field values are versioned by chalicelib/stores/field_versions.py (one implementation of supersede,
shared with the session commit).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import Conflict, NotFound, Unavailable
from chalicelib.domain.ids import new_id
from chalicelib.domain.interlocutor import ChannelIdentity, FieldChange, FieldValue, InterlocutorData, ValueStatus
from chalicelib.stores import items as it
from chalicelib.stores.field_versions import (
    LIVE_ATTRIBUTE,
    MAX_WRITE_ATTEMPTS,
    PROFILE_SK,
    RACE_CODES,
    cancellation_codes,
    field_change_items,
    is_cancelled,
    iso,
    live_values,
    read_field_heads,
    stored_values,
)
from chalicelib.stores.liveness import is_gone, tenant_live_check
from chalicelib.stores.session_index import session_index_keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

logger = Logger(child=True)

IDENTITY_SK = "IDENTITY"


def profile_data(profile: it.Item, interlocutor_id: str, now_s: float) -> InterlocutorData:
    """An interlocutor's live values from its PROFILE item (see field_versions.live_values)."""
    return InterlocutorData(interlocutor_id=interlocutor_id, fields=live_values(profile, now_s))


def identity_listing_sk(channel: str, user_id: str) -> str:
    return f"IDENT#{channel}#{user_id}"


def session_listing_sk(session_id: str) -> str:
    return f"SESSION#{session_id}"


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
        """The interlocutor of this identity; created on first contact, exactly once under races.

        Raises NotFound (nothing written) when the tenant was deleted (stores/liveness.py).
        """
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
                LIVE_ATTRIBUTE: {"M": {}},
            }
            transaction: list[TransactWriteItemTypeDef] = [
                *self._identity_items(
                    tenant_id, interlocutor_id, channel, user_id, condition="attribute_not_exists(pk)"
                ),
                {"Put": {"TableName": self._table, "Item": profile}},
                tenant_live_check(self._table, tenant_id),  # never under a deleted tenant (liveness.py)
            ]
            try:
                self._client.transact_write_items(TransactItems=transaction)
            except ClientError as exc:
                if is_gone(exc, transaction):
                    raise NotFound("the tenant was deleted") from exc
                if not (is_cancelled(exc) and RACE_CODES & set(cancellation_codes(exc))):
                    raise Unavailable("could not record the interlocutor") from exc
                continue  # another resolve won the race: read its interlocutor
            except BotoCoreError as exc:
                raise Unavailable("could not record the interlocutor") from exc
            logger.info("interlocutor created", extra={"tenant_id": tenant_id, "interlocutor_id": interlocutor_id})
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
        except BotoCoreError as exc:
            raise Unavailable("could not link the identity") from exc
        except ClientError as exc:
            codes = cancellation_codes(exc) if is_cancelled(exc) else []
            if codes and codes[0] == "ConditionalCheckFailed":
                raise NotFound("no such interlocutor", interlocutor_id=interlocutor_id) from exc
            if "ConditionalCheckFailed" in codes:
                raise Conflict("this channel identity belongs to another interlocutor", channel=channel) from exc
            raise Unavailable("could not link the identity") from exc

    def load(self, tenant_id: str, interlocutor_id: str, now_s: float) -> InterlocutorData | None:
        """Live values only (ACTIVE and not expired, whatever TTL did or did not delete yet)."""
        rows = self._partition(tenant_id, interlocutor_id)
        if not any(it.text(row, "sk") == PROFILE_SK for row in rows):
            return None
        fields: dict[str, FieldValue] = {}
        for value, status in stored_values(rows):
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

    def load_live(self, tenant_id: str, interlocutor_id: str, now_s: float) -> InterlocutorData | None:
        """The live values only, from the PROFILE item: one GetItem (identities are not listed)."""
        try:
            item = self._client.get_item(
                TableName=self._table, ConsistentRead=True,
                Key=it.key(it.interlocutor_pk(tenant_id, interlocutor_id), PROFILE_SK),
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("could not read interlocutor data") from exc
        return profile_data(item, interlocutor_id, now_s) if item else None

    def history(self, tenant_id: str, interlocutor_id: str, now_s: float | None = None) -> list[FieldValue]:
        """Every stored version, by field then version, with status ACTIVE, SUPERSEDED or EXPIRED."""
        at = time.time() if now_s is None else now_s
        result = []
        for stored, status in stored_values(self._partition(tenant_id, interlocutor_id)):
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
            transaction = field_change_items(self._table, it.interlocutor_pk(tenant_id, interlocutor_id), changes,
                                             heads=heads, now_s=now_s)
            try:
                self._client.transact_write_items(TransactItems=transaction)
                return
            except ClientError as exc:
                codes = cancellation_codes(exc) if is_cancelled(exc) else []
                if not RACE_CODES & set(codes):
                    raise Unavailable("could not write interlocutor data") from exc
            except BotoCoreError as exc:
                raise Unavailable("could not write interlocutor data") from exc
        raise Conflict("interlocutor data kept changing while it was written", interlocutor_id=interlocutor_id)

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
                    rows_of_session = list(it.partition_items(self._client, self._table, session_pk, consistent=True))
                    keys = [it.key(session_pk, it.text(item, "sk")) for item in rows_of_session]
                    keys += session_index_keys(rows_of_session)
                    it.delete_keys(self._client, self._table, keys)
            it.delete_keys(self._client, self._table, [it.key(it.text(r, "pk"), it.text(r, "sk")) for r in rows])
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
