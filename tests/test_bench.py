"""The bench scripts run (they are how DESIGN.md §7's figures are measured): a small size of each
quick one, its figures printed. The figures themselves are recorded in docs/STATUS.md, never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_handshake_bench_runs_turns_through_the_gateway_and_prints_its_figures() -> None:
    out = bench("bench/http_handshakes.py", "--turns", "2", "--calls", "2")

    assert "first turn: 1 TLS handshake(s) for 2 LLM call(s)" in out
    assert "warm turns: 0 new TLS handshakes over 2 turns" in out
    assert "pooled p50=" in out and "fresh connection p50=" in out
