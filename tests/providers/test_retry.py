"""Retries with exponential backoff and full jitter."""

from __future__ import annotations

import pytest

from chalicelib.providers.retry import MAX_BACKOFF_S, Retryable, with_retries


def test_waits_grow_exponentially_up_to_the_cap_and_the_last_retryable_is_raised() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        raise Retryable(f"failure {len(calls)}")

    with pytest.raises(Retryable, match="failure 6"):
        with_retries(attempt, max_retries=5, backoff_base_s=1.0, sleep=waits.append)

    assert len(calls) == 6
    bounds = [1.0, 2.0, 4.0, MAX_BACKOFF_S, MAX_BACKOFF_S]  # full jitter: uniform in [0, bound]
    assert len(waits) == len(bounds)
    assert all(0 <= wait <= bound for wait, bound in zip(waits, bounds, strict=True))


def test_a_non_retryable_error_passes_through_at_once() -> None:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        raise ValueError("bad request")

    with pytest.raises(ValueError):
        with_retries(attempt, max_retries=3, backoff_base_s=0.0, sleep=lambda _: None)
    assert len(calls) == 1


def test_negative_retries_mean_one_attempt() -> None:
    with pytest.raises(Retryable):
        with_retries(lambda: (_ for _ in ()).throw(Retryable("x")), max_retries=-1, backoff_base_s=0.0)
