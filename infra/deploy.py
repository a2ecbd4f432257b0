"""Deploy infra/template.yaml with CloudFormation into an AWS endpoint (moto_server, LocalStack, AWS).

    python -m infra.deploy --stage dev            # uses AWS_ENDPOINT_URL when it is set

Prints the stack outputs as `KEY=value` lines (the environment the app reads). Used by the local
stack, by the integration tests, and by the in-process test fixtures (against moto's mock).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

TEMPLATE = Path(__file__).with_name("template.yaml")

# Stack output -> the environment variable the app reads it from.
OUTPUT_ENV = {
    "MainTableName": "RUCHE_TABLE",
    "IdempotencyTableName": "RUCHE_IDEMPOTENCY_TABLE",
    "TurnQueueUrl": "RUCHE_TURN_QUEUE_URL",
    "TurnDeadLetterQueueUrl": "RUCHE_TURN_DLQ_URL",
    "SecretsKeyId": "RUCHE_SECRETS_KEY_ID",
}


def deploy(stage: str = "dev", client: CloudFormationClient | None = None, timeout_s: float = 60.0) -> dict[str, str]:
    """Create (or update) the stack and return the app's environment built from its outputs."""
    cfn = client or boto3.client("cloudformation")
    name = f"ruche-{stage}"
    body = TEMPLATE.read_text()
    params: list[Any] = [{"ParameterKey": "Stage", "ParameterValue": stage}]
    with warnings.catch_warnings():
        # moto's CloudFormation (in process) has no alarms and warns as it skips them; AWS creates them.
        warnings.filterwarnings("ignore", message="Tried to parse AWS::CloudWatch::Alarm", category=UserWarning)
        if _exists(cfn, name):
            try:
                cfn.update_stack(StackName=name, TemplateBody=body, Parameters=params)
            except cfn.exceptions.ClientError as exc:
                if "No updates are to be performed" not in str(exc):
                    raise
        else:
            cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params)
    stack = _wait(cfn, name, timeout_s)
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    return {env: outputs[key] for key, env in OUTPUT_ENV.items() if key in outputs}


def _exists(cfn: CloudFormationClient, name: str) -> bool:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError:
        return False
    return bool(stacks) and stacks[0]["StackStatus"] != "DELETE_COMPLETE"


def _wait(cfn: CloudFormationClient, name: str, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return stack
        if "FAILED" in status or "ROLLBACK" in status:
            raise RuntimeError(f"stack {name} ended in {status}: {stack.get('StackStatusReason', '')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {name} still {status} after {timeout_s:.0f} s")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    for key, value in deploy(args.stage).items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
