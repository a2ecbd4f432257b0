"""Budgets for tenant-written logic: how much time a turn may spend in expressions and regexes.

Expressions and patterns are written by tenants and run on text written by users, so neither can
be trusted to be cheap. A turn opens one `TurnBudget` (`with turn_budget(): ...`); every
expression evaluation and every tenant regex search inside it draws from it, wherever it runs
(enforcement, guards, transitions, field patterns). Outside a turn (publish, the CLI) only the
per-call slices apply. Spending past a budget raises `BudgetExceeded`, which callers treat as
"fails closed": a violation for a hard constraint, "does not hold" for a guard or a transition,
nothing extracted for a field pattern.

Pure: reads the monotonic clock, does no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Seconds of wall clock a turn may spend evaluating expressions (all of them, every draft).
TURN_EXPRESSIONS_S = 0.5
# Seconds a turn may spend matching tenant-written regexes (field patterns and `matches()`).
TURN_REGEX_S = 0.25


class BudgetExceeded(TimeoutError):
    """Tenant logic used more than it may. `reason` is fit for a turn record (no tenant data).

    A TimeoutError, so code that already treats a regex timeout as "no match" keeps doing so.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TurnBudget:
    """What is left of one turn's allowance. Not thread-safe: a turn runs on one thread."""

    __slots__ = ("_expressions_s", "_regex_s")

    def __init__(self, *, expressions_s: float = TURN_EXPRESSIONS_S, regex_s: float = TURN_REGEX_S) -> None:
        self._expressions_s = expressions_s
        self._regex_s = regex_s

    @property
    def expressions_left_s(self) -> float:
        return self._expressions_s

    @property
    def regex_left_s(self) -> float:
        return self._regex_s

    def spend_expressions(self, seconds: float) -> None:
        self._expressions_s -= seconds

    def spend_regex(self, seconds: float) -> None:
        self._regex_s -= seconds


_current: ContextVar[TurnBudget | None] = ContextVar("ruche_turn_budget", default=None)


@contextmanager
def turn_budget(*, expressions_s: float = TURN_EXPRESSIONS_S, regex_s: float = TURN_REGEX_S) -> Iterator[TurnBudget]:
    """Open a turn's budget for the code run inside the block (the pipeline wraps each turn)."""
    budget = TurnBudget(expressions_s=expressions_s, regex_s=regex_s)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def current() -> TurnBudget | None:
    """The budget of the turn being run, or None outside a turn."""
    return _current.get()


def now_s() -> float:
    return time.perf_counter()
