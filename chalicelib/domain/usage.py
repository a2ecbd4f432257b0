"""What one committed turn adds to its tenant's usage and its agent's quality insights.

Pure: derived from the turn record alone, so the counters can always be recounted from the turn
records (tests/stores/test_dynamo_usage.py does exactly that). stores/dynamo_usage.py turns a
TurnTally into counter updates inside the turn's own transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.turn import TurnRecord

# The usage counters, in the order the API lists them (API.md, "Usage, quotas and insights").
COUNTERS: tuple[str, ...] = (
    "turns", "llm_calls", "prompt_tokens", "completion_tokens", "tool_calls", "regenerations", "fallbacks",
    "handoffs",
)
MAX_RANGE_DAYS = 92  # a quarter: a usage or insights answer reads at most this many days
CALLED_TOOL_STATUSES = frozenset({"ok", "error", "timeout"})  # the call went out (skips do not count)


@dataclass(frozen=True, slots=True)
class FunnelMove:
    """One scenario step's funnel counts changed by one turn."""

    scenario_id: str
    step_id: str
    stage: str  # entered | completed | left


@dataclass(frozen=True, slots=True)
class TurnTally:
    """Everything one turn adds: usage counters, and the insight counters of its agent."""

    counters: dict[str, int]
    applied: tuple[str, ...] = ()  # rule ids applied this turn
    violated: dict[str, int] = field(default_factory=dict)  # rule id -> drafts that violated it
    funnel: tuple[FunnelMove, ...] = ()
    unmatched: bool = False  # no rule applied and no scenario involved


def tally(record: TurnRecord) -> TurnTally:
    """What `record` adds to the counters. A silent turn (handoff) or a refused one (quota) is a
    turn with nothing else; `handoffs` counts the turn that handed over, not the silent ones after."""
    outcome = record.outcome
    answered = record.kind == "answered"
    counters = {
        "turns": 1,
        "llm_calls": record.llm_calls,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "tool_calls": sum(1 for call in record.tool_calls if call.status in CALLED_TOOL_STATUSES),
        "regenerations": outcome.regeneration_attempts,
        "fallbacks": int(outcome.fallback_used),
        "handoffs": int(outcome.handoff and answered),
    }
    if not answered:
        return TurnTally(counters=counters)
    violated: Counter[str] = Counter()
    for attempt in record.attempts:
        violated.update({violation.rule_id for violation in attempt.violations})
    trace = record.scenario_trace
    in_scenario = trace is not None and trace.scenario_id is not None and trace.action != "none"
    return TurnTally(
        counters=counters,
        applied=tuple(dict.fromkeys(outcome.rules)),
        violated=dict(violated),
        funnel=funnel_moves(record),
        unmatched=not outcome.rules and not in_scenario,
    )


def funnel_moves(record: TurnRecord) -> tuple[FunnelMove, ...]:
    """Steps entered, completed and left this turn, from the turn's scenario trace.

    A step is entered when the session arrives on it, completed when a transition takes the session
    on (or the scenario completes on it), and left when the scenario is exited from it.
    `entered - completed - left` is then who is still on the step or went silent there.
    """
    trace = record.scenario_trace
    if trace is None or trace.scenario_id is None:
        return ()
    scenario = trace.scenario_id
    if trace.action == "exit":
        return (FunnelMove(scenario, trace.from_step, "left"),) if trace.from_step else ()
    if trace.action not in ("start", "transition", "complete"):
        return ()
    path = list(trace.path)
    arrived = path if trace.from_step is None else path[1:]
    done = path if trace.action == "complete" else path[:-1]
    return (*(FunnelMove(scenario, step, "entered") for step in arrived),
            *(FunnelMove(scenario, step, "completed") for step in done))


@dataclass(frozen=True, slots=True)
class DateRange:
    """An inclusive range of UTC days, at most MAX_RANGE_DAYS long."""

    first: dt.date
    last: dt.date

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> DateRange:
        """From the `from` and `to` query parameters. Raises InvalidInput (422) for a missing or
        malformed date, a reversed range, or one longer than MAX_RANGE_DAYS, all at once."""
        problems: list[tuple[str, str]] = []
        dates: list[dt.date] = []
        for name, raw in (("from", start), ("to", end)):
            try:
                dates.append(dt.date.fromisoformat(raw or ""))
            except ValueError:
                problems.append((name, "must be a date YYYY-MM-DD"))
        if problems:
            raise InvalidInput.many(problems)
        first, last = dates
        if last < first:
            raise InvalidInput.at("to", "must not be before from")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise InvalidInput.at("to", f"the range may span at most {MAX_RANGE_DAYS} days")
        return cls(first, last)

    def days(self) -> list[str]:
        count = (self.last - self.first).days + 1
        return [(self.first + dt.timedelta(days=offset)).isoformat() for offset in range(count)]


def utc_day(now_s: float) -> str:
    return dt.datetime.fromtimestamp(now_s, dt.UTC).date().isoformat()


def utc_month(now_s: float) -> str:
    return utc_day(now_s)[:7]


def next_month_start(now_s: float) -> dt.datetime:
    """When the month of `now_s` ends (UTC): the reset time of a monthly quota."""
    today = dt.datetime.fromtimestamp(now_s, dt.UTC)
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class MonthUsage:
    """A tenant's turns and tokens (prompt + completion) so far this UTC month."""

    turns: int = 0
    tokens: int = 0


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LONG_NUMBER = re.compile(r"\+?\d[\d .()-]{5,}\d")  # phone, card and account numbers
SAMPLE_CHARS = 200


def scrub_sample(message: str) -> str:
    """A sample message for insights: the turn record's text (PII fields already masked) with any
    e-mail address or long number masked too, since an unmatched message often holds an undeclared
    one, cut to SAMPLE_CHARS."""
    masked = _LONG_NUMBER.sub("‹number›", _EMAIL.sub("‹email›", message))
    return masked if len(masked) <= SAMPLE_CHARS else masked[: SAMPLE_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class UnmatchedSample:
    turn_id: str
    session_id: str
    message: str  # PII masked (scrub_sample)
    at: str


@dataclass(slots=True)
class DayRow:
    """One agent's day, summed over the counter shards."""

    date: str
    agent_id: str
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    insights: dict[str, int] = field(default_factory=dict)  # "applied:<rule>", "entered:<sc>/<step>", ...
    samples: list[UnmatchedSample] = field(default_factory=list)

    def add(self, name: str, value: int) -> None:
        target = self.counters if name in self.counters else self.insights
        target[name] = target.get(name, 0) + value


@dataclass(frozen=True, slots=True)
class QuotaBreach:
    """A monthly quota the tenant has used up: which, how much, and when it resets."""

    limit: str  # monthly_tokens | monthly_turns
    quota: int
    used: int
    month: str  # yyyy-mm
    reset_at: str  # ISO 8601, the first instant of the next UTC month
    retry_after_s: int


def quota_breach(limits: dict[str, int | None], ceilings: dict[str, int | None], month: MonthUsage,
                 now_s: float) -> QuotaBreach | None:
    """The first monthly quota `month` has reached, or None. A limit is the lower of the tenant's
    (resolved) value and the platform's ceiling, so a tenant value above the ceiling changes nothing."""
    used = {"monthly_tokens": month.tokens, "monthly_turns": month.turns}
    reset = next_month_start(now_s)
    for name, spent in used.items():
        candidates = [value for value in (limits.get(name), ceilings.get(name)) if value is not None]
        if candidates and spent >= min(candidates):
            return QuotaBreach(limit=name, quota=min(candidates), used=spent, month=utc_month(now_s),
                               reset_at=reset.isoformat().replace("+00:00", "Z"),
                               retry_after_s=max(1, int(reset.timestamp() - now_s)))
    return None
