"""The reads of a warm turn in two BatchGetItem round trips (DESIGN.md §7: three with the commit).

1. `start`: the agent's head (latest version), the tenant config layer, the channel identity,
   the session key's open-session pointer and the tenant's month usage shards (for quotas) — all
   known from the request.
2. `session_and_data`: the session and the interlocutor's PROFILE (which keeps the live values).

The published bundle itself is cached per container by version, so a warm turn reads none of it.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from chalicelib.domain.interlocutor import InterlocutorData
from chalicelib.domain.session import Session, SessionKey, session_key_hash
from chalicelib.stores import items as it
from chalicelib.stores.dynamo_bundles import DELETED_ATTRIBUTE, head_sk
from chalicelib.stores.dynamo_config import CONFIG_SK
from chalicelib.stores.dynamo_interlocutors import IDENTITY_SK, profile_data
from chalicelib.stores.dynamo_sessions import POINTER_SK, SESSION_SK
from chalicelib.stores.dynamo_usage import month_keys, month_usage
from chalicelib.stores.field_versions import PROFILE_SK
from chalicelib.stores.ports import TurnStart

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoTurnReads:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    @it.store_edge
    def start(self, key: SessionKey, now_s: float | None = None) -> TurnStart:
        tenant = key.tenant_id
        head = it.key(it.tenant_pk(tenant), head_sk(key.agent_id))
        config = it.key(it.tenant_pk(tenant), CONFIG_SK)
        identity = it.key(it.identity_pk(tenant, key.channel, key.user_id), IDENTITY_SK)
        pointer = it.key(it.session_key_pk(tenant, session_key_hash(key)), POINTER_SK)
        months = month_keys(tenant, time.time() if now_s is None else now_s)
        found = self._batch_get([head, config, identity, pointer, *months])
        head_item, config_item = found.get(_id(head)), found.get(_id(config))
        identity_item, pointer_item = found.get(_id(identity)), found.get(_id(pointer))
        return TurnStart(
            latest_version=(it.number(head_item, "version")
                            if head_item and DELETED_ATTRIBUTE not in head_item else None),
            tenant_layer=json.loads(it.text(config_item, it.DOC_ATTRIBUTE)) if config_item else {},
            interlocutor_id=it.text(identity_item, "interlocutor_id") or None if identity_item else None,
            session_id=it.text(pointer_item, "session_id") or None if pointer_item else None,
            month=month_usage(item for month in months if (item := found.get(_id(month))) is not None),
        )

    @it.store_edge
    def session_and_data(self, tenant_id: str, session_id: str, interlocutor_id: str,
                         now_s: float) -> tuple[Session | None, InterlocutorData | None]:
        session_key = it.key(it.session_pk(tenant_id, session_id), SESSION_SK)
        profile_key = it.key(it.interlocutor_pk(tenant_id, interlocutor_id), PROFILE_SK)
        found = self._batch_get([session_key, profile_key])
        session_item, profile_item = found.get(_id(session_key)), found.get(_id(profile_key))
        session = it.read_doc(session_item, Session) if session_item else None
        data = profile_data(profile_item, interlocutor_id, now_s) if profile_item else None
        return session, data

    def _batch_get(self, keys: list[it.Item]) -> dict[tuple[str, str], it.Item]:
        """Strongly consistent BatchGetItem, following UnprocessedKeys (rare: throttling)."""
        found: dict[tuple[str, str], it.Item] = {}
        pending: Any = {self._table: {"Keys": keys, "ConsistentRead": True}}
        while pending:
            response = self._client.batch_get_item(RequestItems=pending)
            for item in response.get("Responses", {}).get(self._table, []):
                found[(it.text(item, "pk"), it.text(item, "sk"))] = item
            pending = response.get("UnprocessedKeys") or None
        return found


def _id(key: it.Item) -> tuple[str, str]:
    return it.text(key, "pk"), it.text(key, "sk")
