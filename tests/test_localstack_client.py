"""localstack-client, the LocalStack tooling users already have, works against our moto_server endpoint."""

from __future__ import annotations

import pytest
from localstack_client.session import Session

from infra.deploy import deploy
from tests.conftest import MotoEndpoint


def test_localstack_client_deploys_and_uses_the_stack_on_the_local_endpoint(
        moto_endpoint: MotoEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint.url)  # how localstack-client finds the edge
    session = Session()
    env = deploy("lsclient", client=session.client("cloudformation"))
    dynamodb = session.client("dynamodb")
    dynamodb.put_item(TableName=env["RUCHE_TABLE"], Item={"pk": {"S": "T#probe"}, "sk": {"S": "X"}})
    item = dynamodb.get_item(TableName=env["RUCHE_TABLE"], Key={"pk": {"S": "T#probe"}, "sk": {"S": "X"}})
    assert item["Item"]["pk"]["S"] == "T#probe"
    sqs = session.client("sqs")
    sqs.send_message(QueueUrl=env["RUCHE_TURN_QUEUE_URL"], MessageBody="{}", MessageGroupId="g",
                     MessageDeduplicationId="d")
    received = sqs.receive_message(QueueUrl=env["RUCHE_TURN_QUEUE_URL"], WaitTimeSeconds=1)
    assert [message["Body"] for message in received["Messages"]] == ["{}"]
