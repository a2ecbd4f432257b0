"""localstack-client, the LocalStack tooling users already have, works against our moto_server endpoint."""

from __future__ import annotations

import pytest
from localstack_client.session import Session

from tests.conftest import MotoEndpoint, assert_stack_works


def test_localstack_client_deploys_and_uses_the_stack_on_the_local_endpoint(
        moto_endpoint: MotoEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint.url)  # how localstack-client finds the edge
    assert_stack_works(Session(), "lsclient")
