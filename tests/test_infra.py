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


def test_alarms_watch_dead_letters_and_the_fallback_rate_and_the_dashboard_reads_the_turn_metrics() -> None:
    from chalicelib.runtime.metrics import NAMESPACE, TURN_METRICS

    template, problems = decode_str(TEMPLATE.read_text())
    assert not problems
    resources = template["Resources"]
    dead = resources["DeadLetterAlarm"]["Properties"]
    assert (dead["MetricName"], dead["Threshold"], dead["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible", 0, "GreaterThanThreshold")
    assert dead["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["TurnDeadLetterQueue", "QueueName"]}
    rate = resources["FallbackRateAlarm"]["Properties"]
    assert rate["Threshold"] == {"Ref": "FallbackRateThreshold"}
    watched = {query["MetricStat"]["Metric"]["MetricName"]: query["MetricStat"]["Metric"]
               for query in rate["Metrics"] if "MetricStat" in query}
    assert set(watched) == {"Fallbacks", "Turns"}
    for metric in watched.values():  # exactly what runtime/metrics.py emits: namespace and its one dimension
        assert metric["Namespace"] == NAMESPACE and metric["Dimensions"] == [{"Name": "service", "Value": "ruche"}]
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    for name in TURN_METRICS:
        assert f'"{name}"' in body
    assert "tenant" not in body  # no per-tenant metric: the count stays fixed as tenants grow
