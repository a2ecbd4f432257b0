"""Throughput and time-to-drain of the queue path under faults (issue 11; DESIGN.md §7 "0 lost").

Starts `python -m infra.local` with the worker's fault points armed and runs tests/faults/chaos.py:
async API users, webchat visitors (each message posted twice), one 300-message backlog built while
the worker is stopped, the worker SIGKILLed every ~30 s of its life (~20 s at full size) and at named points, 5 % of
turn commits failing as a DynamoDB 500, redis-server killed once (restarted empty), chalice local
killed once. Prints what was accepted, lost, duplicated, the turns, and how fast it drained.

    .venv/bin/python bench/queue_faults.py                      # the CI size of the fault suite
    .venv/bin/python bench/queue_faults.py --users 50 --messages 40   # the issue's 2,000 turns
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.chaos import Size, run  # noqa: E402
from tests.faults.conftest import handle, start_hurt  # noqa: E402
from tests.integration.conftest import stop  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Size()
    parser.add_argument("--users", type=int, default=default.users)
    parser.add_argument("--messages", type=int, default=default.messages, help="async turns per user")
    parser.add_argument("--backlog", type=int, default=default.backlog)
    parser.add_argument("--visitors", type=int, default=default.visitors)
    args = parser.parse_args()
    size = replace(default, users=args.users, messages=args.messages, backlog=args.backlog, visitors=args.visitors,
                   drain_timeout_s=3600.0)
    with tempfile.TemporaryDirectory(prefix="ruche-faults-") as logs:
        stack = start_hurt(Path(logs), size.worker_env())
        try:
            report = run(handle(stack), size)
        finally:
            stop(stack)
        restarts = {name: stack.output.count(f"↻ {name} exited") for name in ("worker", "redis", "chalice")}
    total_s = report.send_s + report.drain_s
    print(f"accepted messages        {report.accepted}")
    print(f"lost / duplicated        {len(report.lost)} / {len(report.duplicated)}")
    print(f"problems                 {report.problems or 'none'}")
    print(f"turns (API sessions)     {report.turns}, largest {report.largest_turn} messages, "
          f"backlog of {size.backlog} in {report.backlog_turns} turns")
    print(f"faults                   {report.faults}, restarts {restarts}, dead letters replayed "
          f"{max(report.replayed, 0)}")
    print(f"sending took             {report.send_s:.0f} s")
    print(f"drained after the last   {report.drain_s:.0f} s")
    print(f"throughput               {report.accepted / total_s:.2f} messages/s answered under faults")
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
