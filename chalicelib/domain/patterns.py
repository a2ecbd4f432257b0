"""Regular expressions written by tenants (field patterns, `matches()` in constraints), run safely.

Three guards, because a pattern is tenant-written and the text it runs on is user-written:

- before it compiles, a pattern is checked for length (MAX_PATTERN_CHARS) and for how far its
  bounded repeats expand (MAX_PATTERN_SIZE): `regex` unrolls `{m,n}`, so the 26 characters
  `(?:(?:a{100}){100}){1000}` would take seconds and gigabytes to compile (and stay cached);
- every match stops after PATTERN_TIMEOUT_S (catastrophic backtracking);
- inside a turn, every match draws from the turn's regex budget (domain/budget.py), so 200
  `matches()` in one expression cannot hold a turn for 200 timeouts.

`compile_tenant_pattern()` is the entry point; `search()` and `fullmatch()` are shorthands that
treat running out of time as "no match" (field validation: an unmatched value is refused).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from chalicelib.domain.budget import BudgetExceeded, current, now_s

if TYPE_CHECKING:
    import regex

PATTERN_TIMEOUT_S = 0.05
MAX_PATTERN_CHARS = 1000
# Items of the unrolled pattern: `a{100}` is 100, `(?:ab){50}` is 100, `x*` is 1. Compiling
# 10,000 takes about 2 ms and a few hundred kB.
MAX_PATTERN_SIZE = 10_000


class PatternError(ValueError):
    """The pattern cannot be used: invalid, too long, or it repeats too much. The message is a
    predicate ("is not a valid regular expression: ...") fit for a 422 after the pattern's path."""


def check_pattern(pattern: str) -> int:
    """The pattern's unrolled size; raises PatternError when the pattern is too long or unrolls
    too far. Never compiles it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"is longer than {MAX_PATTERN_CHARS} characters")
    size = unrolled_size(pattern)
    if size > MAX_PATTERN_SIZE:
        raise PatternError(f"repeats too much: it unrolls to {size:,} items (at most {MAX_PATTERN_SIZE:,})")
    return size


@dataclass(frozen=True, slots=True)
class TenantPattern:
    """A checked, compiled tenant pattern whose matches are bounded in time.

    Each method raises BudgetExceeded (a TimeoutError) when the match runs out of time or the
    turn's regex budget is spent; the caller decides what that means (no match, a violation).
    """

    source: str
    _compiled: regex.Pattern[str]

    def search(self, text: str, pos: int = 0) -> regex.Match[str] | None:
        timeout = _call_timeout()
        started = now_s()
        try:
            return self._compiled.search(text, pos, timeout=timeout)
        except TimeoutError as exc:
            raise BudgetExceeded(f"a pattern ran out of time ({timeout:.2g} s)") from exc
        finally:
            _spend(now_s() - started)

    def fullmatch(self, text: str) -> regex.Match[str] | None:
        timeout = _call_timeout()
        started = now_s()
        try:
            return self._compiled.fullmatch(text, timeout=timeout)
        except TimeoutError as exc:
            raise BudgetExceeded(f"a pattern ran out of time ({timeout:.2g} s)") from exc
        finally:
            _spend(now_s() - started)

    def finditer(self, text: str, pos: int = 0) -> Iterator[regex.Match[str]]:
        """Matches from `pos` on; the timeout covers the whole iteration."""
        timeout = _call_timeout()
        started = now_s()
        try:
            yield from self._compiled.finditer(text, pos, timeout=timeout)
        except TimeoutError as exc:
            raise BudgetExceeded(f"a pattern ran out of time ({timeout:.2g} s)") from exc
        finally:
            _spend(now_s() - started)


def compile_tenant_pattern(pattern: str) -> TenantPattern:
    """Check, then compile. Raises PatternError.

    Small patterns are cached per container; big ones (up to 1.3 MB compiled) are not, so
    patterns built from turn data (`matches(reply, message)`) cannot fill memory through the cache.
    """
    if check_pattern(pattern) <= _CACHED_SIZE:
        return _cached(pattern)
    return _compile(pattern)


_CACHED_SIZE = 1000  # about 130 kB compiled: 256 of them stay under 35 MB


@lru_cache(maxsize=256)
def _cached(pattern: str) -> TenantPattern:
    return _compile(pattern)


def _compile(pattern: str) -> TenantPattern:
    import regex  # noqa: PLC0415 - 30-45 ms at cold start, and only a bundle with patterns needs it

    try:
        return TenantPattern(source=pattern, _compiled=regex.compile(pattern))
    except (regex.error, OverflowError, RecursionError) as exc:
        raise PatternError(f"is not a valid regular expression: {exc}") from exc


def compiled(pattern: str) -> regex.Pattern[str]:
    """The raw compiled pattern, checked first. Raises PatternError.

    Kept for callers that pass their own timeout; new code should use compile_tenant_pattern().
    """
    return compile_tenant_pattern(pattern)._compiled


def search(pattern: str, text: str) -> regex.Match[str] | None:
    """The first match anywhere in `text`; None also when the pattern ran out of time."""
    try:
        return compile_tenant_pattern(pattern).search(text)
    except TimeoutError:
        return None


def fullmatch(pattern: str, text: str) -> bool:
    """True when the whole `text` matches; False also when the pattern ran out of time."""
    try:
        return compile_tenant_pattern(pattern).fullmatch(text) is not None
    except TimeoutError:
        return False


def _call_timeout() -> float:
    budget = current()
    if budget is None:
        return PATTERN_TIMEOUT_S
    left = budget.regex_left_s
    if left <= 0:
        raise BudgetExceeded("the turn's regex budget is spent")
    return min(PATTERN_TIMEOUT_S, left)


def _spend(seconds: float) -> None:
    budget = current()
    if budget is not None:
        budget.spend_regex(seconds)


def unrolled_size(pattern: str) -> int:
    """How many items the pattern has once its bounded repeats are unrolled (an upper bound).

    A scan, not a parser: escapes and classes count as one item, a group as the sum of its
    items, `{m,n}` multiplies the item before it by n (by m when open-ended), `* + ?` by one.
    """
    frames: list[list[int]] = [[0, 0]]  # per open group: [total, size of its last item]
    index, length = 0, len(pattern)
    while index < length:
        char = pattern[index]
        item = 1
        if char == "\\":
            index = _after_escape(pattern, index)
        elif char == "[":
            index = _after_class(pattern, index)
        elif char == "(":
            frames.append([0, 0])
            index += 1
            continue
        elif char == ")" and len(frames) > 1:
            item = max(frames.pop()[0], 1)
            index += 1
        elif char == "{" and (repeat := _repeat_at(pattern, index)) is not None:
            times, index = repeat
            frame = frames[-1]
            frame[0] += frame[1] * (times - 1)
            frame[1] *= times
            continue
        elif char in "*+?|":
            index += 1
            continue
        else:
            index += 1
        frame = frames[-1]
        frame[0] += item
        frame[1] = item
    return sum(frame[0] for frame in frames)


def _after_escape(pattern: str, index: int) -> int:
    index += 2
    # \p{L}, \N{DASH}, \x{263a}: the braces belong to the escape
    if index < len(pattern) and pattern[index] == "{" and pattern[index - 1] in "pPNxgu":
        close = pattern.find("}", index)
        return len(pattern) if close < 0 else close + 1
    return index


def _after_class(pattern: str, index: int) -> int:
    index += 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    depth = 1  # `regex` allows nested sets: [[a-z]--[aeiou]]
    while index < len(pattern) and depth:
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        depth += 1 if char == "[" else -1 if char == "]" else 0
        index += 1
    return index


def _repeat_at(pattern: str, index: int) -> tuple[int, int] | None:
    """`{m}`, `{m,}`, `{,n}`, `{m,n}` at index -> (the larger bound, index after it); else None."""
    found = _REPEAT.match(pattern, index)
    if found is None or not (found["low"] or found["high"]):
        return None  # a literal brace
    bound = int(found["high"] or found["low"])
    return max(bound, 1), found.end()


_REPEAT = re.compile(r"\{\s*(?P<low>\d*)\s*(?:,\s*(?P<high>\d*)\s*)?\}[?+]?", re.ASCII)
