"""Regular expressions written by tenants (field patterns, `matches()` in constraints), run safely.

They run on text users write, so a pattern with catastrophic backtracking must not hold a turn:
the `regex` module stops a match after PATTERN_TIMEOUT_S and we treat that as "does not match".
Compiled patterns are cached, so a pattern is compiled once per container.
"""

from __future__ import annotations

from functools import lru_cache

import regex

PATTERN_TIMEOUT_S = 0.05


class PatternError(ValueError):
    """The pattern is not a valid regular expression."""


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> regex.Pattern[str]:
    """Raises PatternError for an invalid pattern."""
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise PatternError(f"is not a valid regular expression: {exc}") from exc


def search(pattern: str, text: str) -> regex.Match[str] | None:
    """The first match anywhere in `text`; None also when the pattern ran out of time."""
    try:
        return compiled(pattern).search(text, timeout=PATTERN_TIMEOUT_S)
    except TimeoutError:
        return None


def fullmatch(pattern: str, text: str) -> bool:
    """True when the whole `text` matches; False also when the pattern ran out of time."""
    try:
        return compiled(pattern).fullmatch(text, timeout=PATTERN_TIMEOUT_S) is not None
    except TimeoutError:
        return False
