"""The fault suite's local stack: `python -m infra.local` with the worker's fault points armed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.chaos import Stack
from tests.integration.conftest import STARTUP_TIMEOUT_S, LocalStack, launch, read_logs, stop


def start_hurt(logs: Path, worker_env: dict[str, str]) -> LocalStack:
    """Launch the stack with RUCHE_FAULT_POINTS for its worker and wait for the banner."""
    stack = launch(logs, **worker_env)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not stack.banner_seen.wait(0.2):
        if stack.process.poll() is not None or time.monotonic() > deadline:
            stop(stack)
            pytest.fail(f"the local stack did not start:\n{stack.output}\n{read_logs(logs)}")
    return stack


def handle(stack: LocalStack) -> Stack:
    return Stack(pid=stack.process.pid, api_url=stack.api_url, admin_key=stack.banner_value("Admin key"),
                 aws_endpoint=stack.banner_value("AWS"))
