"""CallMeter: counts the DynamoDB round trips made through one boto3 client."""

from __future__ import annotations

from chalicelib.stores.metering import CallMeter
from tests.conftest import Aws

KEY = {"pk": {"S": "T#acme"}, "sk": {"S": "X"}}


def test_each_call_is_counted_by_operation_until_reset(any_aws: Aws) -> None:
    meter = CallMeter.attach(any_aws.dynamodb)
    any_aws.dynamodb.put_item(TableName=any_aws.table, Item=KEY)
    any_aws.dynamodb.get_item(TableName=any_aws.table, Key=KEY)
    any_aws.dynamodb.get_item(TableName=any_aws.table, Key=KEY)
    assert meter.count == 3
    assert meter.by_operation == {"PutItem": 1, "GetItem": 2}
    meter.reset()
    assert meter.count == 0


def test_one_meter_can_watch_two_clients_and_stops_when_detached(any_aws: Aws) -> None:
    meter = CallMeter.attach(any_aws.dynamodb)
    meter.watch(any_aws.sqs)
    any_aws.dynamodb.get_item(TableName=any_aws.table, Key=KEY)
    any_aws.sqs.get_queue_attributes(QueueUrl=any_aws.queue_url, AttributeNames=["All"])
    assert meter.by_operation == {"GetItem": 1, "GetQueueAttributes": 1}
    meter.detach()
    any_aws.dynamodb.get_item(TableName=any_aws.table, Key=KEY)
    assert meter.count == 2


def test_two_meters_on_one_client_count_independently(any_aws: Aws) -> None:
    first = CallMeter.attach(any_aws.dynamodb)
    any_aws.dynamodb.get_item(TableName=any_aws.table, Key=KEY)
    second = CallMeter.attach(any_aws.dynamodb)
    any_aws.dynamodb.get_item(TableName=any_aws.table, Key=KEY)
    assert (first.count, second.count) == (2, 1)
