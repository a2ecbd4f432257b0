"""What tenant-written logic can cost: the worst cases of expressions, patterns and masking.

Each row times a hostile case end to end through the same functions a publish or a turn calls
(compile_expression, Expression.evaluate inside a turn budget, the built-in extractors,
compile_tenant_pattern, mask_text) and prints the worst of several runs. The figures are in
docs/STATUS.md; docs/SECURITY.md lists the limits they exercise.

    .venv/bin/python bench/tenant_logic.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.domain.budget import turn_budget
from chalicelib.domain.expressions import REPLY_NAMES, ExpressionError, amounts, compile_expression, numbers, percents
from chalicelib.domain.interlocutor import FieldDefinition, FieldType
from chalicelib.domain.patterns import PatternError, compile_tenant_pattern
from chalicelib.focal.privacy import mask_text

RUNS = 5
DIGITS = "1" * 20_000
NAMES = REPLY_NAMES | {"quantity"}


def worst_ms(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return max(times) * 1000


def refused(source: str) -> Callable[[], object]:
    def publish() -> object:
        try:
            compile_expression(source, NAMES)
        except ExpressionError:
            return None
        raise SystemExit(f"not refused: {source[:60]}")
    return publish


def a_turn(source: str, variables: dict[str, object], checks: int = 3) -> Callable[[], object]:
    """`checks` evaluations in one turn budget: the first draft and two regenerations."""
    expression = compile_expression(source, NAMES)

    def run() -> object:
        with turn_budget():
            verdicts = [expression.evaluate(variables) for _ in range(checks)]
        if not all(verdict.overrun for verdict in verdicts):
            raise SystemExit(f"no overrun: {source[:60]}")
        return verdicts
    return run


def main() -> None:
    base = {"reply": "ok", "message": "a" * 5000 + "!", "turn_number": 2, "tools": {}}
    many_matches = "not (" + " or ".join(['matches(message, "(a+)+$")'] * 55) + ")"
    steps = " + ".join(["len(reply)"] * 60)
    rows = [
        ("publish: `4000000 ** 4000000 > 0` refused", worst_ms(refused("4000000 ** 4000000 > 0"))),
        ("publish: `[[0]*4000]*4000 == 0` refused", worst_ms(refused("[[0]*4000]*4000 == 0"))),
        ("publish: 100,000 nested `not` refused", worst_ms(refused("not " * 100_000 + "True"))),
        ("publish: a 60-call expression (~800 chars) compiled and dry-run",
         worst_ms(lambda: compile_expression(steps + " > 0", NAMES))),
        ("turn: `(quantity*1000) ** (quantity*1000)`, 3 checks", worst_ms(
            a_turn("(quantity * 1000) ** (quantity * 1000) > 0", {**base, "quantity": 12}))),
        ("turn: 55 backtracking `matches()` on 5,000 chars, 3 checks", worst_ms(a_turn(many_matches, base))),
        ("amounts() on a 20,000-digit message", worst_ms(lambda: amounts(DIGITS))),
        ("percents() on a 20,000-digit message", worst_ms(lambda: percents(DIGITS))),
        ("numbers() on a 20,000-digit message", worst_ms(lambda: numbers(DIGITS))),
        ("pattern `(?:(?:a{100}){100}){1000}` refused before compiling",
         worst_ms(lambda: _refuse_pattern("(?:(?:a{100}){100}){1000}"))),
        ("mask_text, email + phone shapes, 100,000 chars", worst_ms(lambda: mask_text(
            ("word " * 10_000) + "a" * 25_000 + " " + "7" * 25_000, _PII, {}))),
    ]
    width = max(len(name) for name, _ in rows)
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:9.2f} ms (worst of {RUNS})")


_PII = [FieldDefinition(name="email", type=FieldType.EMAIL, pii=True),
        FieldDefinition(name="phone", type=FieldType.PHONE, pii=True)]


def _refuse_pattern(pattern: str) -> None:
    try:
        compile_tenant_pattern(pattern)
    except PatternError:
        return
    raise SystemExit("not refused")


if __name__ == "__main__":
    main()
