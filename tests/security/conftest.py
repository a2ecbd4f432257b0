"""Fixtures of the hostile-tenant suite: the in-process API, and one local stack for the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.harness import api
from tests.integration.conftest import LocalStack, start, stop

__all__ = ["api", "security_stack"]


@pytest.fixture(scope="package")
def security_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`python -m infra.local` (moto_server, redis-server, a real `chalice local`, the worker),
    started once for every test of tests/security that needs the real local HTTP server."""
    stack = start(tmp_path_factory.mktemp("security-stack-logs"))
    yield stack
    stop(stack)
