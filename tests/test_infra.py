"""The infra/ template deploys and gives the app what it needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cfnlint.decode import decode_str

from tests.conftest import ROOT, Aws

TEMPLATE = ROOT / "infra" / "template.yaml"


def test_template_passes_cfn_lint() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_table_expires_items_by_ttl() -> None:
    # moto's CloudFormation ignores TimeToLiveSpecification, so the declaration is read here.
    template, problems = decode_str(TEMPLATE.read_text())
    assert not problems
    tables = {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::DynamoDB::Table"}
    assert set(tables) == {"MainTable", "IdempotencyTable"}
    for resource in tables.values():
        assert resource["Properties"]["TimeToLiveSpecification"]["Enabled"] is True


def test_deployed_stack_has_tables_and_a_fifo_queue_with_a_dead_letter_queue(aws: Aws) -> None:
    keys = aws.dynamodb.describe_table(TableName=aws.table)["Table"]["KeySchema"]
    assert [key["AttributeName"] for key in keys] == ["pk", "sk"]
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true"
    assert "ruche-test-turns-dlq.fifo" in attributes["RedrivePolicy"]
