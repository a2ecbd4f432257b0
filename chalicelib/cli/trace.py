"""Turn records and outcomes as text a person reads: "why this reply".

Turn records are already PII-masked by the engine (runtime/records.py); nothing here unmasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.turn import Outcome, TurnRecord


def outcome_line(outcome: Outcome) -> str:
    """One line after each chat reply: rules, scenario and step, regenerations, fallback, LLM calls."""
    rules = ", ".join(outcome.rules) or "none"
    where = f"{outcome.scenario.id}/{outcome.scenario.step}" if outcome.scenario else "none"
    parts = [
        f"rules: {rules}",
        f"scenario: {where}",
        f"regenerations: {outcome.regeneration_attempts}",
        f"fallback: {'yes' if outcome.fallback_used else 'no'}",
        f"LLM calls: {outcome.llm_calls}",
    ]
    if outcome.handoff:
        parts.append("handed off to a human")
    return " · ".join(parts)


def record_from_json(data: Mapping[str, Any]) -> TurnRecord:
    """A turn record from the API's JSON, ignoring keys this CLI does not know (a newer server)."""
    known = {name: value for name, value in data.items() if name in TurnRecord.model_fields}
    return TurnRecord.model_validate(known)


def format_record(record: TurnRecord) -> str:
    """The whole trace of one turn, section by section."""
    lines = [
        f"turn {record.turn_number} · {record.turn_id} · agent version {record.agent_version} · "
        f"channel {record.channel} · {record.created_at}",
        f"  user:  {record.message}",
        f"  reply: {record.reply or '(silent: handed off)'}",
        f"  outcome: {outcome_line(record.outcome)}",
    ]
    lines += _rules(record)
    lines += _scenario(record)
    lines += _fields(record)
    lines += _tools(record)
    lines += _attempts(record)
    lines += _fallback(record)
    timings = ", ".join(f"{phase} {ms:g} ms" for phase, ms in record.timings_ms.items())
    lines.append(
        f"  LLM: {record.llm_calls} calls, {record.prompt_tokens} prompt + {record.completion_tokens} completion tokens"
    )
    if timings:
        lines.append(f"  timings: {timings}")
    return "\n".join(lines)


def _rules(record: TurnRecord) -> list[str]:
    if not record.retrieved:
        return ["  rules: none retrieved"]
    lines = ["  rules retrieved (score, decision):"]
    for trace in sorted(record.retrieved, key=lambda item: (not item.selected, -item.score)):
        mark = "✓" if trace.selected else "·"
        lines.append(f"    {mark} {trace.rule_id:<28} {trace.score:.3f}  {trace.reason}")
    return lines


def _scenario(record: TurnRecord) -> list[str]:
    trace = record.scenario_trace
    if trace is None or trace.action == "none":
        return ["  scenario: none"]
    moved = f"{trace.from_step or '-'} -> {trace.to_step or '-'}"
    text = f"  scenario: {trace.scenario_id} {trace.action} ({moved})"
    if len(trace.path) > 1:
        text += f" via {' -> '.join(trace.path)}"
    lines = [text]
    if trace.missing_fields:
        lines.append(f"    still missing: {', '.join(trace.missing_fields)}")
    return lines


def _fields(record: TurnRecord) -> list[str]:
    lines = [f"  field {name} = {value}" for name, value in record.fields_extracted.items()]
    lines += [f"  field {name} rejected: {reason}" for name, reason in record.fields_rejected.items()]
    return lines or ["  fields: none extracted"]


def _tools(record: TurnRecord) -> list[str]:
    lines = []
    for call in record.tool_calls:
        text = (
            f"  tool {call.tool_id}: {call.status} ({call.attempts} attempt{'s' * (call.attempts != 1)}, "
            f"{call.latency_ms:g} ms)"
        )
        lines.append(text + (f": {call.error}" if call.error else ""))
    return lines


def _attempts(record: TurnRecord) -> list[str]:
    lines = []
    for number, attempt in enumerate(record.attempts, start=1):
        verdict = "compliant" if not attempt.violations else f"{len(attempt.violations)} violation(s)"
        lines.append(f"  attempt {number}: {verdict}: {attempt.reply}")
        lines += [
            f"    ✗ {violation.rule_id} ({violation.lane}): {violation.message}" for violation in attempt.violations
        ]
        if attempt.not_applicable:
            lines.append(f"    not applicable (no data): {', '.join(attempt.not_applicable)}")
    return lines


def _fallback(record: TurnRecord) -> list[str]:
    if not record.outcome.fallback_used:
        return ["  fallback: not used"]
    template = record.fallback_template_id or "the built-in safe reply"
    reason = f" because of {record.fallback_reason}" if record.fallback_reason else ""
    return [f"  fallback: {template}{reason}"]
