"""The field resolver: which of a step's required fields are known this turn, and from where.

Also home of the per-bundle cache of compiled guard and transition expressions, because both
evaluate over field values (the names in scope are the bundle's field names + reply, message,
turn_number and tools). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, Literal

from aws_lambda_powertools import Logger

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.expressions import REPLY_NAMES, Expression, ExpressionError, compile_expression
from chalicelib.domain.scenario import Step

logger = Logger(child=True)

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


_CACHE_SIZE = 64  # bundles kept per container
_cache: OrderedDict[int, tuple[AgentBundle, dict[str, Expression | None]]] = OrderedDict()
_cache_lock = Lock()


def expression_for(bundle: AgentBundle, source: str) -> Expression | None:
    """The compiled form of a guard or transition expression of this bundle, compiled once.

    Cached per bundle object (a published version is loaded once per container and reused), so a
    new version gets fresh entries. Returns None for an expression that does not compile (publish
    rejects those; one that slips through never holds).
    """
    key = id(bundle)
    with _cache_lock:
        entry = _cache.get(key)
        if entry is None or entry[0] is not bundle:  # an id can be reused once a bundle is freed
            entry = (bundle, {})
            _cache[key] = entry
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
        compiled = entry[1]
        if source in compiled:
            return compiled[source]
    names = {definition.name for definition in bundle.fields} | REPLY_NAMES
    try:
        expression: Expression | None = compile_expression(source, names)
    except ExpressionError:
        logger.error("expression does not compile; it never holds")
        expression = None
    with _cache_lock:
        compiled[source] = expression
    return expression


def holds(bundle: AgentBundle, source: str, variables: Mapping[str, Any]) -> bool:
    """True when the expression evaluates true; a missing name or an error means it does not hold."""
    expression = expression_for(bundle, source)
    if expression is None:
        return False
    # Blank strings and empty lists count as missing here too, as for required fields.
    scope = {name: value for name, value in variables.items() if name == "tools" or is_known(value)}
    scope.setdefault("tools", {})
    verdict = expression.evaluate(scope)
    return verdict.applicable and verdict.holds
