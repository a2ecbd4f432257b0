"""Item helpers: botocore errors become Unavailable at the store edge; paging reads every item."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.domain.errors import Conflict, Unavailable
from chalicelib.stores import items
from chalicelib.stores.dynamo_config import DynamoConfigStore
from tests.conftest import Aws


def test_a_missing_table_surfaces_as_unavailable_with_the_aws_code(any_aws: Aws) -> None:
    store = DynamoConfigStore(any_aws.dynamodb, "no-such-table")
    with pytest.raises(Unavailable) as caught:
        store.get_tenant_layer("acme")
    assert caught.value.details == {"operation": "get_tenant_layer", "aws_code": "ResourceNotFoundException"}
    assert isinstance(caught.value.__cause__, ClientError)


def test_domain_errors_pass_the_store_edge_unchanged() -> None:
    @items.store_edge
    def refuse() -> None:
        raise Conflict("taken")

    with pytest.raises(Conflict):
        refuse()


def test_a_connection_failure_is_unavailable_with_no_aws_code() -> None:
    @items.store_edge
    def unreachable() -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(Unavailable) as caught:
        unreachable()
    assert caught.value.details["aws_code"] == ""


def test_puts_and_deletes_go_in_batches_and_partition_reads_page_through_all(any_aws: Aws) -> None:
    pk = items.tenant_pk("acme") + "#BULK"
    rows = [items.key(pk, f"R#{index:03d}") | {"pad": items.s("x" * 20_000)} for index in range(60)]
    items.put_items(any_aws.dynamodb, any_aws.table, rows)  # 60 rows x 20 KB: 3 batches, 2 query pages
    found = list(items.partition_items(any_aws.dynamodb, any_aws.table, pk, "R#0", consistent=True))
    assert [items.text(row, "sk") for row in found] == [f"R#{index:03d}" for index in range(60)]
    items.delete_keys(
        any_aws.dynamodb, any_aws.table, [items.key(pk, items.text(row, "sk")) for row in found]
    )
    assert list(items.partition_items(any_aws.dynamodb, any_aws.table, pk)) == []


def test_attribute_readers_fall_back_to_defaults() -> None:
    row = items.key("T#a", "X") | {"count": items.n(7)}
    assert (items.text(row, "missing", "d"), items.number(row, "count"), items.number(row, "missing", 3)) == (
        "d",
        7,
        3,
    )
    assert items.error_code(ValueError("not aws")) == ""
    assert items.is_condition_failure(ValueError("not aws")) is False


def test_keys_follow_the_table_layout_of_ports() -> None:
    assert [
        items.tenant_pk("t"),
        items.agent_pk("t", "a"),
        items.session_pk("t", "s"),
        items.session_key_pk("t", "h"),
        items.interlocutor_pk("t", "i"),
        items.identity_pk("t", "slack", "U1"),
        items.dedupe_pk("t", "twilio"),
        items.apikey_pk("abc"),
        items.binding_pk("b"),
    ] == [
        "T#t",
        "T#t#A#a",
        "T#t#S#s",
        "T#t#SK#h",
        "T#t#I#i",
        "T#t#ID#slack#U1",
        "T#t#DEDUPE#twilio",
        "APIKEY#abc",
        "BINDING#b",
    ]


def throttle(times: int) -> Callable[..., object]:
    """A before-call hook answering like a throttled DynamoDB: nothing written, all unprocessed."""
    calls = {"left": times}

    def handler(params: dict[str, Any], **_: Any) -> object:
        if calls["left"] == 0:
            return None  # let the real call through
        calls["left"] -= 1
        unprocessed = json.loads(params["body"])["RequestItems"]  # the request as serialised for the wire
        answer = {"UnprocessedItems": unprocessed, "ResponseMetadata": {"HTTPStatusCode": 200}}
        return AWSResponse("", 200, {}, None), answer

    return handler


def test_items_a_throttled_batch_left_unprocessed_are_written_on_retry(any_aws: Aws) -> None:
    hook = throttle(times=2)
    any_aws.dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", hook)
    items.put_items(
        any_aws.dynamodb, any_aws.table, [items.key("T#acme#BULK", f"R#{index}") for index in range(3)]
    )
    any_aws.dynamodb.meta.events.unregister("before-call.dynamodb.BatchWriteItem", hook)
    assert len(list(items.partition_items(any_aws.dynamodb, any_aws.table, "T#acme#BULK"))) == 3


def test_a_batch_throttled_for_good_is_unavailable(any_aws: Aws) -> None:
    hook = throttle(times=100)
    any_aws.dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", hook)
    with pytest.raises(Unavailable):
        items.put_items(any_aws.dynamodb, any_aws.table, [items.key("T#acme#BULK", "R#1")])
    any_aws.dynamodb.meta.events.unregister("before-call.dynamodb.BatchWriteItem", hook)
