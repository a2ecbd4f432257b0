"""DynamoDB item helpers shared by the stores: key building, the `doc` attribute, paging, error checks.

Every store keeps its document as one JSON string attribute `doc` (pydantic `model_dump_json`)
next to `pk`/`sk`: no Decimal conversion, one parse on read. The table layout is drawn in ports.py.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from chalicelib.domain.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]
else:
    Item = dict

M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")
R = TypeVar("R")

TTL_ATTRIBUTE = "expires_at"
DOC_ATTRIBUTE = "doc"


# --- keys (ports.py, "Table layout") -------------------------------------------------------------


def tenant_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def agent_pk(tenant_id: str, agent_id: str) -> str:
    return f"T#{tenant_id}#A#{agent_id}"


def session_pk(tenant_id: str, session_id: str) -> str:
    return f"T#{tenant_id}#S#{session_id}"


def session_key_pk(tenant_id: str, key_hash: str) -> str:
    return f"T#{tenant_id}#SK#{key_hash}"


def interlocutor_pk(tenant_id: str, interlocutor_id: str) -> str:
    return f"T#{tenant_id}#I#{interlocutor_id}"


def identity_pk(tenant_id: str, channel: str, user_id: str) -> str:
    return f"T#{tenant_id}#ID#{channel}#{user_id}"


def dedupe_pk(tenant_id: str, channel: str) -> str:
    return f"T#{tenant_id}#DEDUPE#{channel}"


def apikey_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


def binding_pk(binding_id: str) -> str:
    return f"BINDING#{binding_id}"


def key(pk: str, sk: str) -> Item:
    """The primary key of one item, ready for GetItem/DeleteItem/UpdateItem."""
    return {"pk": {"S": pk}, "sk": {"S": sk}}


# --- attributes ----------------------------------------------------------------------------------


def s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n(value: int | float) -> AttributeValueTypeDef:
    return {"N": str(value)}


def doc_item(pk: str, sk: str, model: BaseModel, **extra: AttributeValueTypeDef) -> Item:
    """An item holding `model` as JSON in `doc`, plus any extra attributes (e.g. expires_at)."""
    item: Item = {"pk": {"S": pk}, "sk": {"S": sk}, DOC_ATTRIBUTE: {"S": model.model_dump_json()}}
    item.update(extra)
    return item


def read_doc(item: Item, model: type[M]) -> M:
    """The model stored in `doc` of an item written by doc_item."""
    return model.model_validate_json(item[DOC_ATTRIBUTE]["S"])


def text(item: Item, name: str, default: str = "") -> str:
    value = item.get(name)
    return value["S"] if value is not None and "S" in value else default


def number(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value is not None and "N" in value else default


# --- reading many --------------------------------------------------------------------------------


def query_all(client: DynamoDBClient, **params: Any) -> Iterator[Item]:
    """Every item of a Query, following LastEvaluatedKey (a response stops at 1 MB)."""
    while True:
        page = client.query(**params)
        yield from page.get("Items", [])
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        params["ExclusiveStartKey"] = last


def partition_items(
    client: DynamoDBClient, table: str, pk: str, sk_prefix: str = "", consistent: bool = False
) -> Iterator[Item]:
    """Every item of one partition, optionally only the sort keys starting with sk_prefix."""
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": consistent,
    }
    if sk_prefix:
        params["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
        params["ExpressionAttributeValues"][":prefix"] = {"S": sk_prefix}
    return query_all(client, **params)


def delete_keys(client: DynamoDBClient, table: str, keys: list[Item]) -> None:
    """Delete items by key in BatchWriteItem chunks of 25, retrying what DynamoDB left unprocessed."""
    for start in range(0, len(keys), 25):
        write_batch(client, table, [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]])


def put_items(client: DynamoDBClient, table: str, items: list[Item]) -> None:
    """Put items in BatchWriteItem chunks of 25, retrying what DynamoDB left unprocessed."""
    for start in range(0, len(items), 25):
        write_batch(client, table, [{"PutRequest": {"Item": i}} for i in items[start : start + 25]])


def write_batch(client: DynamoDBClient, table: str, requests: list[Any]) -> None:
    """One BatchWriteItem of at most 25 requests, retried with backoff while items come back unprocessed."""
    pending: dict[str, Any] = {table: requests}
    for attempt in range(8):
        response = client.batch_write_item(RequestItems=pending)
        pending = dict(response.get("UnprocessedItems") or {})
        if not pending:
            return
        time.sleep(min(0.02 * 2**attempt, 0.5))  # throttled: DynamoDB asks for exponential backoff
    raise Unavailable("storage kept throttling a batch write", table=table)


# --- errors --------------------------------------------------------------------------------------


def is_condition_failure(exc: BaseException) -> bool:
    """True for a failed ConditionExpression (PutItem/UpdateItem/DeleteItem)."""
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == (
        "ConditionalCheckFailedException"
    )


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def store_edge(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a public store method: a botocore error that escapes it becomes Unavailable.

    Domain errors raised inside (Conflict, NotFound, ...) pass through unchanged; the AWS error
    code goes into details so logs can tell throttling from a missing table.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable(
                "storage is unavailable", operation=method.__name__, aws_code=error_code(exc)
            ) from exc

    return wrapper
