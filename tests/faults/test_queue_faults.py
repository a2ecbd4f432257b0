"""An accepted message is never lost (issue 11): the queue path under crashes, restarts and a backlog.

Over the real local stack (moto_server, redis-server, chalice local, the queue worker) while
tests/faults/chaos.py hurts it. CI runs the default size in a few minutes; the issue's size is

    RUCHE_FAULT_SIZE=full .venv/bin/python -m pytest -p no:cacheprovider -q -m faults
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.chaos import MAX_MESSAGES_PER_TURN, Size, run
from tests.faults.conftest import handle, start_hurt
from tests.integration.conftest import read_logs, stop

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@pytest.mark.timeout(2400)
def test_no_accepted_message_is_lost_or_answered_twice_under_crashes_restarts_and_a_backlog(tmp_path: Path) -> None:
    # GIVEN the local stack whose worker kills itself at named points and fails some commits
    size = Size.from_env()
    stack = start_hurt(tmp_path, size.worker_env())
    try:
        # WHEN users, visitors and one backlog send while the worker, Redis and the API are killed
        report = run(handle(stack), size)
    finally:
        stop(stack)
    context = f"{report}\n{read_logs(tmp_path)[-6000:]}"
    # THEN every accepted message was answered once, in order, with one reply per logical turn
    assert report.problems == {}, context
    assert report.accepted >= size.users * size.messages + size.backlog + size.visitors * size.visitor_messages
    # AND the faults really happened
    assert report.faults.get("worker_sigkill", 0) >= 1, context
    assert report.faults.get("redis_restart_empty") == 1, context
    assert report.faults.get("api_sigkill") == 1, context
    assert "↻ worker exited" in stack.output and "↻ redis exited" in stack.output, stack.output
    # AND the backlog was answered over several bounded turns
    assert report.largest_turn <= MAX_MESSAGES_PER_TURN
    assert report.backlog_turns >= -(-size.backlog // MAX_MESSAGES_PER_TURN)
