"""Nothing is written under a deleted tenant or agent: tenant tombstones and the liveness checks.

A write that creates tenant data on behalf of a public endpoint or a turn (the inbound dedupe
marker, a session opening, a turn's commit) carries two ConditionChecks in its transaction:

    TOMBSTONE#T#<tenant>  TENANT           must not exist   (written first by a tenant deletion)
    T#<tenant>            AGENT#<agent>    must not be flagged `deleted` (an agent deletion)

A tenant deletion writes its tombstone before it scans for the tenant's items, so a write either
committed before the tombstone (and the scan finds and erases it) or is refused after it. The
tombstone is a global item that holds no tenant data (only the id and the deletion time), like
the API-key and binding lookups. The agent head is the tombstone of its agent (dynamo_bundles.py);
a missing head passes, so stores can be exercised without publishing an agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.stores.dynamo_bundles import DELETED_ATTRIBUTE, head_sk
from chalicelib.stores.field_versions import cancellation_codes
from chalicelib.stores.items import key, n, s, tenant_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from chalicelib.stores.items import Item

TOMBSTONE_PREFIX = "TOMBSTONE#"
_TOMBSTONE_SK = "TENANT"


def tombstone_key(tenant_id: str) -> Item:
    return key(TOMBSTONE_PREFIX + tenant_pk(tenant_id), _TOMBSTONE_SK)


def tombstone_item(tenant_id: str, now_s: float) -> Item:
    """The tenant's tombstone: its key and the deletion time, nothing else."""
    return {**tombstone_key(tenant_id), "deleted_at": n(int(now_s)), "kind": s("tenant_tombstone")}


def tenant_live_check(table: str, tenant_id: str) -> TransactWriteItemTypeDef:
    """A ConditionCheck that fails once the tenant is deleted."""
    return {"ConditionCheck": {"TableName": table, "Key": tombstone_key(tenant_id),
                               "ConditionExpression": "attribute_not_exists(pk)"}}


def live_checks(table: str, tenant_id: str, agent_id: str) -> list[TransactWriteItemTypeDef]:
    """ConditionChecks that fail once the tenant or the agent is deleted; append them to a transaction."""
    agent: TransactWriteItemTypeDef = {"ConditionCheck": {
        "TableName": table, "Key": key(tenant_pk(tenant_id), head_sk(agent_id)),
        "ConditionExpression": "attribute_not_exists(#deleted)",
        "ExpressionAttributeNames": {"#deleted": DELETED_ATTRIBUTE},
    }}
    return [tenant_live_check(table, tenant_id), agent]


def is_gone(exc: BaseException, transaction: list[TransactWriteItemTypeDef]) -> bool:
    """True when a cancelled transaction failed on one of its liveness checks."""
    if not isinstance(exc, ClientError):
        return False
    for code, item in zip(cancellation_codes(exc), transaction, strict=False):
        check: Any = item.get("ConditionCheck")
        if code == "ConditionalCheckFailed" and check is not None and _is_liveness_key(check["Key"]):
            return True
    return False


def _is_liveness_key(item_key: Any) -> bool:
    pk, sk = item_key["pk"]["S"], item_key["sk"]["S"]
    return bool(pk.startswith(TOMBSTONE_PREFIX) or (pk.count("#") == 1 and sk.startswith(head_sk(""))))
