"""Check one turn against its expectations; each miss reads `what: expected ..., got ...`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chalicelib.cli.runner import TurnResult
from chalicelib.cli.testfile import Expectation, ReplyExpectation


def check_turn(expect: Expectation, turn: TurnResult) -> list[str]:
    """Every expectation the turn misses (empty when it passes), plus the turn's own problems."""
    misses = list(turn.problems)
    outcome = turn.outcome
    if expect.reply is not None:
        misses += _reply_misses(expect.reply, turn.reply)
    if expect.rules is not None:
        missing = [rule for rule in expect.rules if rule not in outcome.rules]
        if missing:
            misses.append(
                f"rules: expected {_ids(expect.rules)} applied, got {_ids(outcome.rules)} (missing {_ids(missing)})"
            )
    if expect.not_rules is not None:
        present = [rule for rule in expect.not_rules if rule in outcome.rules]
        if present:
            misses.append(f"rules: expected {_ids(present)} not applied, got {_ids(outcome.rules)}")
    if expect.scenario is not None:
        got = f"{outcome.scenario.id}/{outcome.scenario.step}" if outcome.scenario else "none"
        if got != expect.scenario:
            misses.append(f"scenario: expected {expect.scenario}, got {got}")
    misses += _scalar_misses(expect, turn)
    if expect.fields is not None:
        misses += _field_misses(expect.fields, turn.values)
    if expect.tools is not None:
        statuses = {call.tool_id: call.status for call in turn.record.tool_calls} if turn.record else {}
        for tool_id, status in expect.tools.items():
            if statuses.get(tool_id) != status:
                misses.append(f"tools.{tool_id}: expected {status}, got {statuses.get(tool_id, 'not called')}")
    return misses


def _reply_misses(expect: ReplyExpectation, reply: str | None) -> list[str]:
    text = reply or ""
    shown = repr(text) if reply is not None else "no reply (silent)"
    misses = [
        f"reply: expected it to contain {phrase!r}, got {shown}"
        for phrase in expect.contains
        if phrase.casefold() not in text.casefold()
    ]
    misses += [
        f"reply: expected it not to contain {phrase!r}, got {shown}"
        for phrase in expect.not_contains
        if phrase.casefold() in text.casefold()
    ]
    if expect.matches is not None:
        try:
            found = re.search(expect.matches, text)
        except re.error as exc:
            return [*misses, f"reply.matches: {expect.matches!r} is not a regular expression ({exc})"]
        if not found:
            misses.append(f"reply: expected it to match /{expect.matches}/, got {shown}")
    return misses


def _scalar_misses(expect: Expectation, turn: TurnResult) -> list[str]:
    outcome = turn.outcome
    pairs: list[tuple[str, Any, Any]] = [
        ("fallback", expect.fallback, outcome.fallback_used),
        ("regeneration_attempts", expect.regeneration_attempts, outcome.regeneration_attempts),
        ("llm_calls", expect.llm_calls, outcome.llm_calls),
        ("handoff", expect.handoff, outcome.handoff),
    ]
    return [
        f"{name}: expected {_show(wanted)}, got {_show(got)}"
        for name, wanted, got in pairs
        if wanted is not None and wanted != got
    ]


def _field_misses(expected: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    misses = []
    for name, wanted in expected.items():
        if name not in values:
            if wanted is not None:
                misses.append(f"fields.{name}: expected {_show(wanted)}, got no stored value")
            continue
        got = values[name]
        if not _same(wanted, got):
            misses.append(f"fields.{name}: expected {_show(wanted)}, got {_show(got)}")
    return misses


def _same(wanted: Any, got: Any) -> bool:
    """Equal, or equal as text: YAML reads 2024-05-01 as a date, the engine stores the ISO string."""
    if isinstance(wanted, bool) or isinstance(got, bool):
        return wanted is got
    return bool(wanted == got or str(wanted) == str(got))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _ids(ids: list[str]) -> str:
    return "[" + ", ".join(ids) + "]"
