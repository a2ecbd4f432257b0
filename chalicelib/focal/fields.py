"""The field resolver: which of a step's required fields are known this turn, and from where.

Also evaluates guard and transition expressions, because both are over field values (the names in
scope are the bundle's field names + reply, message, turn_number and tools); they were compiled
when the version was loaded (focal/agent.py). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from chalicelib.domain.expressions import REPLY_NAMES, Expression
from chalicelib.domain.scenario import Step
from chalicelib.focal.agent import compile_or_none

if TYPE_CHECKING:
    from chalicelib.focal.agent import LoadedAgent

Source = Literal["interlocutor", "session", "turn"]


@dataclass(frozen=True, slots=True)
class FieldResolution:
    missing: tuple[str, ...]  # in declared order; for an unsatisfied any_of, its first group's gaps
    satisfied: bool
    sources: Mapping[str, Source] = field(default_factory=dict)  # each resolved field -> where from


def is_known(value: object) -> bool:
    """None, blank strings and empty lists are not values: a field holding them is missing."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | dict):
        return bool(value)
    return True


def resolve_required(step: Step, *, interlocutor: Mapping[str, Any], session: Mapping[str, Any],
                     extracted: Mapping[str, Any]) -> FieldResolution:
    """Resolve the step's required fields; the freshest source wins (turn > session > interlocutor).

    A plain name is satisfied when it has a value; an `any_of` item when every name of one of its
    groups has a value. Returns what is missing (in declared order) and where each known one came
    from. Never raises.
    """
    layers: tuple[tuple[Source, Mapping[str, Any]], ...] = (
        ("turn", extracted), ("session", session), ("interlocutor", interlocutor))
    sources: dict[str, Source] = {}

    def known(name: str) -> bool:
        for source, values in layers:
            if is_known(values.get(name)):
                sources[name] = source
                return True
        return False

    missing: list[str] = []
    for item in step.required_fields:
        if isinstance(item, str):
            if not known(item):
                missing.append(item)
            continue
        # Evaluate every group (not just the first satisfied one) so `sources` is complete.
        gaps = [[name for name in group if not known(name)] for group in item.any_of]
        if not any(not gap for gap in gaps):
            missing.extend(name for name in gaps[0] if name not in missing)
    unique = tuple(dict.fromkeys(missing))
    return FieldResolution(missing=unique, satisfied=not unique, sources=sources)


def missing_required(step: Step, known: Mapping[str, Any]) -> tuple[str, ...]:
    """The step's missing required fields given every value known this turn."""
    return resolve_required(step, interlocutor={}, session={}, extracted=known).missing


def expression_for(agent: LoadedAgent, source: str) -> Expression | None:
    """The compiled form of a guard or transition expression of this agent version.

    Every expression of the bundle was compiled at load; a source the bundle does not hold is
    compiled here with the bundle's names (not kept). Returns None for an expression that does not
    compile (publish rejects those; one that slips through never holds).
    """
    if source in agent.expressions:
        return agent.expressions[source]
    return compile_or_none(source, {definition.name for definition in agent.bundle.fields} | REPLY_NAMES)


def holds(agent: LoadedAgent, source: str, variables: Mapping[str, Any]) -> bool:
    """True when the expression evaluates true; a missing name or an error means it does not hold."""
    expression = expression_for(agent, source)
    if expression is None:
        return False
    # Blank strings and empty lists count as missing here too, as for required fields.
    scope = {name: value for name, value in variables.items() if name == "tools" or is_known(value)}
    scope.setdefault("tools", {})
    verdict = expression.evaluate(scope)
    return verdict.applicable and verdict.holds
