"""Enforce (phase 10): no reply with a known hard-constraint violation is ever sent.

Each draft is checked by two lanes: constraint expressions (deterministic, every hard rule that has
one) and, when config.enforcement.llm_judge is on, the LLM judge (one call for every hard rule
without an expression). A draft with violations is regenerated with the previous reply and the
enumerated violations as feedback, up to config.enforcement.max_regeneration_attempts times, each
new draft checked again; the first clean draft is sent. Otherwise the fallback is sent (a FALLBACK
template, else the built-in safe reply), never the violating text.

An EXCLUSIVE template's draft is checked too, but never regenerated: nothing was generated, and the
tenant chose that exact text, so a violating exclusive template goes straight to the fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.domain.config import Config
from chalicelib.domain.expressions import Expression
from chalicelib.domain.rule import Rule
from chalicelib.domain.turn import Attempt, Violation
from chalicelib.focal.enforcement.expressions import check_expressions
from chalicelib.focal.enforcement.fallback import choose_fallback
from chalicelib.focal.enforcement.judge import judge
from chalicelib.focal.types import Draft, Enforced, Plan, Regenerate
from chalicelib.providers.llm import LlmProvider, ProviderError

logger = Logger(child=True)


@dataclass(slots=True)
class _Usage:
    """LLM use during enforcement (judge + regeneration); the first draft is the caller's."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, llm_calls: int, prompt_tokens: int, completion_tokens: int) -> None:
        self.llm_calls += llm_calls
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens


@dataclass(slots=True)
class _Turn:
    """What one enforcement run works with, and what it has done so far."""

    plan: Plan
    expression_rules: tuple[Rule, ...]
    judged_rules: tuple[Rule, ...]
    compiled: Mapping[str, Expression] | None
    variables_for: Callable[[str], Mapping[str, Any]]
    format_reply: Callable[[str], str]
    llm: LlmProvider
    config: Config
    mask: Callable[[str], str]
    usage: _Usage = field(default_factory=_Usage)
    attempts: list[Attempt] = field(default_factory=list)
    regenerations: int = 0

    def check(self, reply: str, *, last_chance: bool) -> tuple[Violation, ...]:
        """Both lanes on one draft; the attempt is recorded. Returns its violations."""
        checked = check_expressions(reply, self.expression_rules, self.variables_for(reply),
                                    compiled=self.compiled)
        violations = list(checked.violations)
        if self.judged_rules and violations and last_chance:
            # The draft fails already and nothing will be regenerated: a judge call changes nothing.
            logger.info("judge skipped: the draft fails its expressions and no regeneration is left",
                        extra={"rule_ids": [rule.id for rule in self.judged_rules]})
        elif self.judged_rules:
            # The judge is an LLM: it reads the reply with stored PII values masked, never the values.
            judged = judge(self.mask(reply), self.judged_rules, self.llm, self.config)
            self.usage.add(judged.llm_calls, judged.prompt_tokens, judged.completion_tokens)
            violations.extend(judged.violations)
        self.attempts.append(Attempt(reply=reply, violations=violations,
                                     not_applicable=list(checked.not_applicable)))
        if violations or checked.not_applicable:
            logger.info("draft checked", extra={
                "attempt": len(self.attempts), "violated": [violation.rule_id for violation in violations],
                "not_applicable": list(checked.not_applicable)})
        return tuple(violations)

    def complies(self, text: str) -> bool:
        """The deterministic lane only: how a fallback template is held to the hard constraints."""
        return not check_expressions(text, self.expression_rules, self.variables_for(text),
                                     compiled=self.compiled).violations

    def sent(self, reply: str) -> Enforced:
        logger.info("draft complies", extra={"regeneration_attempts": self.regenerations,
                                             "rules_checked": len(self.plan.hard_rules)})
        return Enforced(reply=reply, attempts=tuple(self.attempts), regeneration_attempts=self.regenerations,
                        fallback_used=False, llm_calls=self.usage.llm_calls,
                        prompt_tokens=self.usage.prompt_tokens,
                        completion_tokens=self.usage.completion_tokens)

    def fallback(self, reason: str) -> Enforced:
        # A fallback template is tenant text: it meets the deterministic lane too (no LLM call).
        template, text = choose_fallback(self.plan, self.format_reply, accept=self.complies)
        template_id = template.id if template else None
        violated = sorted({found.rule_id for attempt in self.attempts for found in attempt.violations})
        logger.warning("fallback used", extra={"fallback_reason": reason, "template_id": template_id,
                                               "regeneration_attempts": self.regenerations,
                                               "violated": violated})
        return Enforced(reply=text, attempts=tuple(self.attempts), regeneration_attempts=self.regenerations,
                        fallback_used=True, fallback_template_id=template_id, fallback_reason=reason,
                        llm_calls=self.usage.llm_calls, prompt_tokens=self.usage.prompt_tokens,
                        completion_tokens=self.usage.completion_tokens)


@dataclass(frozen=True, slots=True)
class ReplyHandling:
    """What the caller knows about this turn's replies, for enforcement to check and redo them.

    `variables_for(reply)` gives the expression variables of a candidate reply; `expressions` (rule
    id -> compiled, from LoadedAgent.constraints) saves compiling per turn; `mask(reply)` hides
    stored PII values from the judge (focal/privacy.mask_text); `format_reply` shapes a reply for
    the channel, fallbacks included.
    """

    variables_for: Callable[[str], Mapping[str, Any]]
    regenerate: Regenerate
    format_reply: Callable[[str], str]
    expressions: Mapping[str, Expression] | None = None
    mask: Callable[[str], str] = str


def enforce(first: Draft, plan: Plan, handling: ReplyHandling, *, llm: LlmProvider, config: Config) -> Enforced:
    """The reply to send for this turn, with every checked draft and its violations.

    Never raises for a provider failure: it ends in the fallback with reason "provider_error".
    """
    expression_rules, judged_rules = _lanes(plan.hard_rules, config)
    turn = _Turn(plan=plan, expression_rules=expression_rules, judged_rules=judged_rules,
                 compiled=handling.expressions, variables_for=handling.variables_for,
                 format_reply=handling.format_reply, llm=llm, config=config, mask=handling.mask)
    if first.failed or not first.reply.strip():
        return turn.fallback("provider_error")
    allowed = 0 if plan.exclusive is not None else config.enforcement.max_regeneration_attempts
    draft = first
    while True:
        last_chance = turn.regenerations >= allowed
        violations = turn.check(draft.reply, last_chance=last_chance)
        if not violations:
            return turn.sent(draft.reply)
        if last_chance:
            return turn.fallback("violations")
        draft = _regenerate(handling.regenerate, draft.reply, violations)
        turn.regenerations += 1
        turn.usage.add(draft.llm_calls, draft.prompt_tokens, draft.completion_tokens)
        if draft.failed:
            return turn.fallback("provider_error")
        if not draft.reply.strip():
            logger.warning("regeneration came back empty",
                           extra={"regeneration_attempts": turn.regenerations})
            return turn.fallback("violations")


def _lanes(hard_rules: Sequence[Rule], config: Config) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    """(rules checked by expression, rules for the judge); duplicates by id removed."""
    unique = tuple({rule.id: rule for rule in hard_rules}.values())
    with_expression = tuple(rule for rule in unique if rule.expression is not None)
    without = tuple(rule for rule in unique if rule.expression is None)
    if without and not config.enforcement.llm_judge:
        logger.warning("hard constraints left unchecked: enforcement.llm_judge is off",
                       extra={"rule_ids": [rule.id for rule in without]})
        without = ()
    return with_expression, without


def _regenerate(regenerate: Regenerate, previous: str, violations: tuple[Violation, ...]) -> Draft:
    try:
        return regenerate(previous, violations)
    except ProviderError as exc:  # the Regenerate contract says Draft(failed=True); be safe anyway
        logger.warning("regeneration raised a provider error", extra={"error_code": exc.code})
        return Draft(reply="", llm_calls=1, failed=True)
