"""Retries with exponential backoff and full jitter, shared by every provider."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

MAX_BACKOFF_S = 8.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """How a provider waits before a retry (see with_retries); tests replace `sleep`, or set 0."""

    base_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep


DEFAULT_BACKOFF = Backoff()


class Retryable(Exception):
    """Raised by an attempt that failed in a way worth retrying (5xx, 429, timeout, throttling)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def with_retries(attempt: Callable[[], T], *, max_retries: int, backoff_base_s: float,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `attempt` up to max_retries + 1 times while it raises Retryable.

    Returns its first result. Re-raises the last Retryable when the retries run out; any other
    exception passes through at once (a 400 will not get better by asking again).
    """
    retries_left = max(0, max_retries)
    while True:
        try:
            return attempt()
        except Retryable:
            if retries_left == 0:
                raise
        done = max_retries - retries_left
        retries_left -= 1
        # Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): spreads the
        # retries of many containers hitting the same throttled provider.
        sleep(random.uniform(0, min(MAX_BACKOFF_S, backoff_base_s * 2**done)))  # noqa: S311
