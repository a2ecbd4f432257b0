"""Both AWS back ends behave as one: a table written through one client is read back through it."""

from __future__ import annotations

from tests.conftest import Aws


def test_each_backend_stores_and_returns_an_item(any_aws: Aws) -> None:
    any_aws.dynamodb.put_item(TableName=any_aws.table, Item={"pk": {"S": "T#a"}, "sk": {"S": "X"}})
    item = any_aws.dynamodb.get_item(TableName=any_aws.table, Key={"pk": {"S": "T#a"}, "sk": {"S": "X"}})
    assert item["Item"]["pk"]["S"] == "T#a"
