"""infra/template.yaml against a real LocalStack (opt-in: it needs Docker, which CI machines lack)."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.conftest import assert_stack_works

# Read at import: the autouse sandbox fixture removes AWS_ENDPOINT_URL before each test runs.
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL") or "http://localhost:4566"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.localstack,
    pytest.mark.skipif(os.environ.get("RUCHE_LOCALSTACK") != "1",
                       reason="LocalStack not running: set RUCHE_LOCALSTACK=1 with LocalStack on :4566"),
]


def test_the_template_deploys_into_localstack_and_its_tables_and_queue_work(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from localstack_client.session import Session

    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)  # localstack-client reads it
    session = Session()
    stage = f"t{uuid.uuid4().hex[:8]}"

    assert_stack_works(session, stage)
    session.client("cloudformation").delete_stack(StackName=f"ruche-{stage}")
