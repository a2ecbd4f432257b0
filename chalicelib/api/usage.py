"""GET /v1/usage, /v1/tenants/{tenant_id}/usage and /v1/agents/{agent_id}/insights (API.md).

Both answers are built from the day items the turn commit keeps (stores/dynamo_usage.py), never by
scanning turn records: a 92-day answer reads at most USAGE_SHARDS Queries of one item per agent-day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.ids import is_valid_id
from chalicelib.domain.usage import COUNTERS, DateRange, DayRow
from chalicelib.runtime.services import Services

MAX_SAMPLES = 5  # unmatched-turn samples in an insights answer


class _Answer(BaseModel):
    """Built on first use, not at cold start: only the usage and insights routes serialise these."""

    model_config = ConfigDict(defer_build=True)


class UsageCounters(_Answer):
    turns: int = 0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0
    regenerations: int = 0
    fallbacks: int = 0
    handoffs: int = 0


class UsageDay(UsageCounters):
    date: str
    agent_id: str


class UsageAnswer(_Answer):
    """GET /v1/usage and GET /v1/tenants/{tenant_id}/usage."""

    days: list[UsageDay]
    totals: UsageCounters


class RuleCount(_Answer):
    rule_id: str
    count: int


class FunnelStep(_Answer):
    step_id: str
    entered: int
    completed: int
    left: int


class ScenarioFunnel(_Answer):
    scenario_id: str
    steps: list[FunnelStep]


class UnmatchedSampleOut(_Answer):
    turn_id: str
    session_id: str
    message: str = Field(description="PII masked")
    at: str


class Unmatched(_Answer):
    turns: int
    samples: list[UnmatchedSampleOut]


class InsightsAnswer(_Answer):
    """GET /v1/agents/{agent_id}/insights. Rates are per turn, 0.0 without turns."""

    model_config = ConfigDict(populate_by_name=True)

    agent_id: str
    from_: str = Field(alias="from")
    to: str
    turns: int
    fallbacks: int
    regenerations: int
    fallback_rate: float
    regeneration_rate: float
    violations: list[RuleCount]
    rules_applied: list[RuleCount]
    scenario_funnel: list[ScenarioFunnel]
    unmatched: Unmatched


def tenant_usage(services: Services, tenant_id: str, start: str | None, end: str | None,
                 agent_id: str | None = None) -> dict[str, Any]:
    """{"days": [{"date", "agent_id", <counters>}], "totals": {<counters>}}. Raises InvalidInput (422)
    for a bad range or agent id."""
    days = DateRange.parse(start, end)
    if agent_id is not None and not is_valid_id(agent_id):
        raise InvalidInput.at("agent_id", "is not an agent id")
    rows = services.usage.days(tenant_id, days, agent_id)
    totals: Counter[str] = Counter()
    for row in rows:
        totals.update(row.counters)
    answer = UsageAnswer(days=[UsageDay(date=row.date, agent_id=row.agent_id, **row.counters) for row in rows],
                         totals=UsageCounters(**{name: totals[name] for name in COUNTERS}))
    return answer.model_dump()


def admin_usage(services: Services, tenant_id: str, start: str | None, end: str | None,
                agent_id: str | None = None) -> dict[str, Any]:
    """tenant_usage of any tenant, for the platform admin. Raises NotFound for an unknown tenant."""
    days = DateRange.parse(start, end)  # a bad range is 422 before anything is read
    if services.tenants.get(tenant_id) is None:
        raise NotFound("no such tenant", tenant_id=tenant_id)
    return tenant_usage(services, tenant_id, days.first.isoformat(), days.last.isoformat(), agent_id)


def agent_insights(services: Services, tenant_id: str, agent_id: str, start: str | None,
                   end: str | None) -> dict[str, Any]:
    """Quality insights of one agent over a range (shape in API.md). Raises InvalidInput for a bad
    range, NotFound for an agent the tenant never published."""
    days = DateRange.parse(start, end)
    if services.bundles.latest_version(tenant_id, agent_id) is None:
        raise NotFound(f"agent {agent_id!r} not found")
    return insights_of(agent_id, days, services.usage.days(tenant_id, days, agent_id))


def insights_of(agent_id: str, days: DateRange, rows: Sequence[DayRow]) -> dict[str, Any]:
    """The insights answer from an agent's day rows. Rates are per turn, 0.0 without turns."""
    totals: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    for row in rows:
        totals.update(row.counters)
        extra.update(row.insights)
    turns = totals["turns"]
    samples = sorted((sample for row in rows for sample in row.samples), key=lambda sample: sample.at)
    return InsightsAnswer.model_validate({
        "agent_id": agent_id,
        "from": days.first.isoformat(),
        "to": days.last.isoformat(),
        "turns": turns,
        "fallbacks": totals["fallbacks"],
        "regenerations": totals["regenerations"],
        "fallback_rate": round(totals["fallbacks"] / turns, 4) if turns else 0.0,
        "regeneration_rate": round(totals["regenerations"] / turns, 4) if turns else 0.0,
        "violations": _ranked(extra, "violated:"),
        "rules_applied": _ranked(extra, "applied:"),
        "scenario_funnel": _funnel(extra),
        "unmatched": {
            "turns": extra["unmatched"],
            "samples": [{"turn_id": sample.turn_id, "session_id": sample.session_id, "message": sample.message,
                         "at": sample.at} for sample in samples[:MAX_SAMPLES]],
        },
    }).model_dump(by_alias=True)


def _ranked(extra: Counter[str], prefix: str) -> list[dict[str, Any]]:
    found = [(name.removeprefix(prefix), count) for name, count in extra.items() if name.startswith(prefix)]
    return [{"rule_id": rule_id, "count": count} for rule_id, count in sorted(found, key=lambda x: (-x[1], x[0]))]


def _funnel(extra: Counter[str]) -> list[dict[str, Any]]:
    """Steps per scenario in the order sessions first reached them (most entered first)."""
    steps: dict[str, dict[str, dict[str, int]]] = {}
    for name, count in extra.items():
        stage, _, where = name.partition(":")
        if stage not in ("entered", "completed", "left") or "/" not in where:
            continue
        scenario_id, step_id = where.split("/", 1)
        counts = steps.setdefault(scenario_id, {}).setdefault(step_id, {"entered": 0, "completed": 0, "left": 0})
        counts[stage] += count
    return [{"scenario_id": scenario_id,
             "steps": [{"step_id": step_id, **counts}
                       for step_id, counts in sorted(by_step.items(), key=lambda x: (-x[1]["entered"], x[0]))]}
            for scenario_id, by_step in sorted(steps.items())]
