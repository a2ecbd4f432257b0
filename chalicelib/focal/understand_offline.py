"""The deterministic stand-in for the understanding call: values by type, lexical judgements.

Used as the offline provider's answer and as the fallback when the real call fails, so a turn
never fails on understanding. Honest about what it is: regexes and word overlap, no model.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

import regex

from chalicelib.domain import patterns
from chalicelib.domain.interlocutor import FieldDefinition, FieldType
from chalicelib.focal.index import tokens
from chalicelib.focal.types import Retrieved, TurnContext, Understanding

RULE_CONFIRM_SCORE = 0.35  # a retrieved rule this close to the message applies even without a shared word
SCENARIO_START_SCORE = 0.3  # the best scenario starts when it scores at least this
_CANCEL = re.compile(r"\b(cancel|stop|never\s*mind|forget it|quit)\b", re.IGNORECASE)
_YES = re.compile(r"\b(yes|yeah|yep|yup|sure|ok|okay|confirm(ed)?|correct|absolutely|agreed?|"
                  r"go ahead|please do|do it|that'?s right)\b", re.IGNORECASE)
_NO = re.compile(r"\b(no|nope|not|don'?t|do not|never|cancel|stop|wrong)\b", re.IGNORECASE)
_AGREEING = frozenset({"confirm", "agree", "accept", "approve", "yes"})
_DECLINING = frozenset({"decline", "refuse", "reject", "deny", "disagree"})
_EMAIL = re.compile(r"[^@\s<>()\[\],;:\"']+@[^@\s<>()\[\],;:\"']+\.[A-Za-z]{2,}")
_DATE = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)")
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d ().-]{5,20}\d(?!\w)")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)*(?![\w@])")
_WORDISH = re.compile(r"[^\s,;:!?()\[\]\"']+")

Span = tuple[int, int]


def heuristic_understanding(ctx: TurnContext, retrieved: Retrieved, *,
                            rule_conditions: Mapping[str, str] | None = None) -> Understanding:
    """What the message says, judged without a model (DESIGN.md §5: the offline provider).

    `rule_conditions` (id -> condition of the retrieved rules) saves a pass over the bundle.
    """
    message = ctx.turn.message
    bundle = ctx.published.bundle
    words = set(tokens(message))
    saying_yes = bool(_YES.search(message)) and not _NO.search(message)
    saying_no = bool(_NO.search(message)) and not _YES.search(message)

    conditions_of = rule_conditions if rule_conditions is not None else {
        rule.id: rule.condition for rule in bundle.rules}  # bundle.rule() would scan the rules per id
    applicable = tuple(
        item.item_id for item in retrieved.rules
        if item.score >= RULE_CONFIRM_SCORE or _shares_word(words, conditions_of.get(item.item_id, "")))

    state = ctx.session.scenario
    signal: Literal["none", "start", "continue", "exit"] = "none"
    scenario_id: str | None = None
    conditions: list[str] = []
    wanted: set[str] = set()
    if state is not None:
        scenario = bundle.scenario(state.scenario_id)
        own_words = set(tokens(scenario.condition)) if scenario is not None else set()
        cancel = _CANCEL.search(message)
        # "cancel" starts a cancellation scenario; inside it, it is not a wish to leave.
        signal = "exit" if cancel and not set(tokens(cancel.group(0))) & own_words else "continue"
        step = scenario.step(state.step_id) if scenario is not None else None
        if step is not None:
            wanted = set(step.field_names())
            for position, transition in enumerate(step.transitions):
                if transition.condition is not None and _holds(transition.condition, words, saying_yes,
                                                               saying_no):
                    conditions.append(f"{state.scenario_id}/{step.id}/{position}")
    elif retrieved.scenarios and retrieved.scenarios[0].score >= SCENARIO_START_SCORE:
        signal, scenario_id = "start", retrieved.scenarios[0].item_id

    known = values_known(ctx)
    values = extract_values(message, bundle.fields, asked={name for name in wanted if name not in known})
    intent = scenario_id or (applicable[0] if applicable else "")
    return Understanding(
        intent=intent, language="en", values=values, applicable_rules=applicable, scenario_signal=signal,
        scenario_id=scenario_id, conditions_true=tuple(conditions),
        confirmed=ctx.session.pending_confirmation is not None and saying_yes)


def extract_values(message: str, fields: Sequence[FieldDefinition], *,
                   asked: Collection[str] = ()) -> dict[str, Any]:
    """Field values found in the message, by field type. `asked`: fields the current step wants,
    so a bare "yes" answers a boolean one."""
    claimed: list[Span] = []
    found: dict[str, Any] = {}
    # Most specific shapes first, so a date is not read as a phone number nor an order id as a number.
    order = (FieldType.EMAIL, FieldType.DATE, FieldType.STRING, FieldType.PHONE, FieldType.ENUM,
             FieldType.LIST, FieldType.INTEGER, FieldType.NUMBER, FieldType.BOOLEAN)
    numeric = [field for field in fields if field.type in (FieldType.INTEGER, FieldType.NUMBER)]
    for kind in order:
        for field in (field for field in fields if field.type is kind):
            value = _extract(field, message, claimed, asked=field.name in asked, alone=len(numeric) == 1)
            if value is not None:
                found[field.name] = value
    return found


def _extract(field: FieldDefinition, message: str, claimed: list[Span], *, asked: bool, alone: bool) -> Any:
    if field.values and field.type in (FieldType.ENUM, FieldType.STRING, FieldType.LIST):
        return _mentioned_values(field, message)
    kind = field.type
    if kind is FieldType.BOOLEAN:
        if not (asked or _mentions_name(field, message)):
            return None
        if _YES.search(message) and not _NO.search(message):
            return True
        return False if _NO.search(message) and not _YES.search(message) else None
    if kind in (FieldType.INTEGER, FieldType.NUMBER):
        start = 0 if alone or asked else _name_position(field, message)
        return None if start is None else _first(field, _NUMBER, message, claimed, after=start)
    if kind is FieldType.STRING and field.pattern is not None:
        inside = patterns.compile_tenant_pattern(_unanchored(field.pattern))  # timed, and on the turn's budget
        return _first(field, _WORDISH, message, claimed) or _first(field, inside, message, claimed)
    shape = {FieldType.EMAIL: _EMAIL, FieldType.DATE: _DATE, FieldType.PHONE: _PHONE}.get(kind)
    return _first(field, shape, message, claimed) if shape is not None else None


def _first(field: FieldDefinition, shape: re.Pattern[str] | patterns.TenantPattern, message: str,
           claimed: list[Span], after: int = 0) -> str | None:
    """The first unclaimed match of `shape` that the field accepts; claims its span."""
    try:
        return _first_of(field, _matches(shape, message, after), claimed)
    except TimeoutError:  # a tenant pattern that backtracks too long extracts nothing
        return None


def _matches(shape: re.Pattern[str] | patterns.TenantPattern, message: str,
             after: int) -> Iterator[re.Match[str] | regex.Match[str]]:
    return shape.finditer(message, after)


def _first_of(field: FieldDefinition, found: Iterator[re.Match[str] | regex.Match[str]],
              claimed: list[Span]) -> str | None:
    for match in found:
        text = match.group(0).strip(".,;:!?")
        span = (match.start(), match.start() + len(text))
        if not text or any(span[0] < end and start < span[1] for start, end in claimed):
            continue
        try:
            field.coerce(text)
        except ValueError:
            continue
        claimed.append(span)
        return text
    return None


def _mentioned_values(field: FieldDefinition, message: str) -> Any:
    hits = sorted((match.start(), value) for value in field.values or ()
                  for match in [re.search(rf"(?<!\w){re.escape(value)}(?!\w)", message, re.IGNORECASE)]
                  if match is not None)
    if not hits:
        return None
    return [value for _, value in hits] if field.type is FieldType.LIST else hits[0][1]


def _name_words(field: FieldDefinition) -> list[str]:
    return [word for word in re.split(r"[_.\-\s]+", field.name.lower()) if len(word) >= 3]


def _mentions_name(field: FieldDefinition, message: str) -> bool:
    return _name_position(field, message) is not None


def _name_position(field: FieldDefinition, message: str) -> int | None:
    lowered = message.lower()
    positions = [lowered.find(word) for word in _name_words(field) if word in lowered]
    return min(positions) if positions else None


def _unanchored(pattern: str) -> str:
    return pattern.removeprefix("^").removesuffix("$").removeprefix(r"\A").removesuffix(r"\Z")


def _holds(condition: str, words: set[str], saying_yes: bool, saying_no: bool) -> bool:
    condition_words = _words_of(condition)
    if condition_words & _AGREEING:  # "the user confirms": a yes, not a shared word, makes it hold
        return saying_yes
    if condition_words & _DECLINING:
        return saying_no
    return _shares_word(words, condition)


def _shares_word(words: set[str], text: str) -> bool:
    return any(len(word) >= 3 for word in words & _words_of(text))


@lru_cache(maxsize=4096)
def _words_of(condition: str) -> frozenset[str]:
    """Conditions repeat turn after turn on a warm container: tokenise each once."""
    return frozenset(tokens(condition))


def values_known(ctx: TurnContext) -> Mapping[str, Any]:
    """Live interlocutor values and session values: what `has_value` is computed from."""
    return {**ctx.interlocutor.values(), **ctx.session.variables}
