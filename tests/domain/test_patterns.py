"""Tenant patterns: checked before they compile, bounded in time, and drawn from the turn's budget."""

from __future__ import annotations

import pytest

from chalicelib.domain.budget import BudgetExceeded, turn_budget
from chalicelib.domain.patterns import (
    MAX_PATTERN_SIZE,
    PatternError,
    check_pattern,
    compile_tenant_pattern,
    fullmatch,
    search,
    unrolled_size,
)


@pytest.mark.parametrize(("pattern", "size"), [
    ("abc", 3),
    ("a{1000}", 1000),
    ("(ab){50}", 100),
    ("x*y+z?", 3),
    (r"\d{3}-\d{4}", 8),
    ("[a-z{}]{3}", 3),
    (r"\p{L}{4}", 4),
    ("a{2,}b{,7}c{3,5}", 14),
    ("a{x}", 4),  # a literal brace
])
def test_the_unrolled_size_counts_bounded_repeats(pattern: str, size: int) -> None:
    assert unrolled_size(pattern) == size


def test_a_pattern_that_unrolls_past_the_limit_is_refused_without_compiling() -> None:
    with pytest.raises(PatternError, match="repeats too much"):
        compile_tenant_pattern("(?:(?:a{100}){100}){1000}")
    with pytest.raises(PatternError, match="longer than 1000 characters"):
        check_pattern("a" * 1001)
    assert check_pattern("a" * 10 + f"b{{{MAX_PATTERN_SIZE - 10}}}") == MAX_PATTERN_SIZE


def test_a_match_that_runs_out_of_time_raises_and_the_shorthands_say_no_match() -> None:
    evil = compile_tenant_pattern("(a+)+b")
    with pytest.raises(BudgetExceeded, match="ran out of time"):
        evil.search("a" * 5000)
    assert search("(a+)+b", "a" * 5000) is None
    assert fullmatch("(a+)+b", "a" * 5000) is False


def test_a_spent_turn_budget_stops_every_later_match_at_once() -> None:
    with turn_budget(regex_s=0.06) as budget:
        with pytest.raises(BudgetExceeded):
            compile_tenant_pattern("(a+)+b").search("a" * 5000)  # spends its 50 ms
        with pytest.raises(BudgetExceeded):
            compile_tenant_pattern("(a+)+b").search("a" * 5000)  # 10 ms left, or none
        assert budget.regex_left_s <= 0
        with pytest.raises(BudgetExceeded, match="regex budget is spent"):
            compile_tenant_pattern("b").search("b")  # even a cheap one
    assert compile_tenant_pattern("b").search("b") is not None  # outside the turn: per-call timeout only


def test_big_patterns_are_not_kept_in_the_cache() -> None:
    big, small = compile_tenant_pattern("a{5000}q"), compile_tenant_pattern("a{50}q")
    assert compile_tenant_pattern("a{5000}q") is not big  # compiled again: memory stays bounded
    assert compile_tenant_pattern("a{50}q") is small
