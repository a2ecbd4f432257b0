"""The deterministic stand-in for the understanding call: values by type, lexical judgements.

Used as the offline provider's answer and as the fallback when the real call fails, so a turn
never fails on understanding. Honest about what it is: regexes and word overlap, no model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from chalicelib.domain.bundle import AgentBundle
from chalicelib.focal.extract import NO, YES, extract_values
from chalicelib.focal.index import tokens
from chalicelib.focal.scenario_choice import choose_scenario
from chalicelib.focal.types import Retrieved, TurnContext, Understanding

RULE_CONFIRM_SCORE = 0.35  # a retrieved rule this close to the message applies even without a shared word
_CANCEL = re.compile(r"\b(cancel|stop|never\s*mind|forget it|quit)\b", re.IGNORECASE)
_AGREEING = frozenset({"confirm", "agree", "accept", "approve", "yes"})
_DECLINING = frozenset({"decline", "refuse", "reject", "deny", "disagree"})

def heuristic_understanding(ctx: TurnContext, retrieved: Retrieved, *,
                            rule_conditions: Mapping[str, str] | None = None) -> Understanding:
    """What the message says, judged without a model (DESIGN.md §5: the offline provider).

    `rule_conditions` (id -> condition of the retrieved rules) saves looking them up again.
    """
    message = ctx.turn.message
    bundle = ctx.published.bundle
    words = set(tokens(message))
    saying_yes = bool(YES.search(message)) and not NO.search(message)
    saying_no = bool(NO.search(message)) and not YES.search(message)

    conditions_of = rule_conditions if rule_conditions is not None else {
        item.item_id: rule.condition for item in retrieved.rules if (rule := bundle.rule(item.item_id))}
    applicable = tuple(
        item.item_id for item in retrieved.rules
        if item.score >= RULE_CONFIRM_SCORE or (
            # A rule with examples is confirmed by how close the message comes to them: one word
            # shared with its condition ("return" in "I want to return order ...") is not enough.
            not _has_examples(bundle, item.item_id) and _shares_word(words, conditions_of.get(item.item_id, ""))))

    state = ctx.session.scenario
    signal: Literal["none", "start", "continue", "exit"] = "none"
    scenario_id: str | None = None
    conditions: list[str] = []
    wanted: set[str] = set()
    chosen = choose_scenario(retrieved.scenarios, state.scenario_id if state is not None else None)
    if state is not None and chosen is not None:
        signal, scenario_id = "start", chosen  # a clear change of mind: the other flow takes over
    elif state is not None:
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
    elif chosen is not None:
        signal, scenario_id = "start", chosen

    known = values_known(ctx)
    values = extract_values(message, bundle.fields, asked={name for name in wanted if name not in known},
                            known={name for name, value in known.items() if value is not None},
                            today=datetime.fromtimestamp(ctx.turn.now_s, UTC).date())
    intent = scenario_id or (applicable[0] if applicable else "")
    return Understanding(
        intent=intent, language="en", values=values, applicable_rules=applicable, scenario_signal=signal,
        scenario_id=scenario_id, conditions_true=tuple(conditions),
        confirmed=ctx.session.pending_confirmation is not None and saying_yes)


def _has_examples(bundle: AgentBundle, rule_id: str) -> bool:
    rule = bundle.rule(rule_id)
    return rule is not None and bool(rule.examples)


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
