"""The enforcement loop: check, regenerate with feedback, fall back — never send a known violation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib.domain.config import Config, EnforcementConfig
from chalicelib.domain.template import TemplateMode
from chalicelib.focal.enforcement.fallback import SAFE_REPLY
from chalicelib.focal.enforcement.loop import ReplyHandling, enforce
from chalicelib.focal.enforcement.variables import expression_variables
from chalicelib.focal.types import Draft, Enforced, Plan
from chalicelib.providers.llm import ProviderError
from tests.focal.enforcement.doubles import RecordingRegenerate, ScriptedLlm, a_draft, a_plan
from tests.focal.factories import a_rule, a_template

CAP = a_rule("cap", action="Never offer more than $50", hard_constraint=True,
             expression="max(amounts(reply) + [0]) <= 50")
TIER = a_rule("tier_cap", action="Stay within the tier's discount", hard_constraint=True,
              expression="max(percents(reply) + [0]) <= max_discount")
COMPETITOR = a_rule("no_competitor", action="Never mention competitor AcmeCorp", hard_constraint=True)
TONE = a_rule("tone", action="Stay courteous", hard_constraint=True)
GLOBAL_FB = a_template("global_fb", text="Sorry, a colleague will follow up.", mode=TemplateMode.FALLBACK)


def config(attempts: int = 2, **enforcement: Any) -> Config:
    return Config(enforcement=EnforcementConfig(max_regeneration_attempts=attempts, **enforcement))


def verdicts(*pairs: tuple[str, bool]) -> str:
    return json.dumps({"verdicts": [{"rule_id": rule_id, "complies": ok, "reason": "r"}
                                    for rule_id, ok in pairs]})


def variables_for(known: Mapping[str, Any] | None = None) -> Any:
    def build(reply: str) -> Mapping[str, Any]:
        return expression_variables(reply=reply, message="refund please", turn_number=1,
                                    known=known or {}, tool_results={})
    return build


def run(first: Draft, plan: Plan, llm: ScriptedLlm, cfg: Config | None = None,
        known: Mapping[str, Any] | None = None,
        format_reply: Any = None) -> tuple[Enforced, RecordingRegenerate]:
    regenerate = RecordingRegenerate(llm)
    handling = ReplyHandling(variables_for(known), regenerate, format_reply or (lambda text: text))
    result = enforce(first, plan, handling, llm=llm, config=cfg or config())
    return result, regenerate


def test_a_compliant_first_draft_is_sent_without_regeneration() -> None:
    first = a_draft("A refund of $40 is on its way.")
    result, regenerate = run(first, a_plan(hard_rules=[CAP]), ScriptedLlm())
    assert result.reply == "A refund of $40 is on its way."
    assert (result.regeneration_attempts, result.fallback_used, result.llm_calls) == (0, False, 0)
    assert [attempt.violations for attempt in result.attempts] == [[]]
    assert regenerate.received == []


@pytest.mark.parametrize("violations", [1, 2])
def test_after_k_violating_drafts_the_next_one_is_sent(violations: int) -> None:
    regenerated = [f"Here is ${60 + k} back." for k in range(violations - 1)] + ["Here is $45 back."]
    llm = ScriptedLlm(*regenerated)
    result, _ = run(a_draft("Here is $80 back."), a_plan(hard_rules=[CAP], fallbacks=[GLOBAL_FB]), llm)
    assert result.reply == "Here is $45 back."
    assert result.regeneration_attempts == violations
    assert not result.fallback_used
    assert len(result.attempts) == violations + 1
    assert [[v.rule_id for v in attempt.violations] for attempt in result.attempts] == \
        [["cap"]] * violations + [[]]
    assert (result.llm_calls, result.prompt_tokens, result.completion_tokens) == \
        (violations, 100 * violations, 10 * violations)


def test_each_regeneration_is_given_the_previous_reply_and_its_violations() -> None:
    llm = ScriptedLlm("Now $70 back.", "Now $30 back.")
    result, regenerate = run(a_draft("Here is $80 back."), a_plan(hard_rules=[CAP]), llm)
    assert [previous for previous, _ in regenerate.received] == ["Here is $80 back.", "Now $70 back."]
    assert all([v.rule_id for v in violations] == ["cap"] for _, violations in regenerate.received)
    first_prompt, second_prompt = llm.prompts("generation")
    assert "Here is $80 back." in first_prompt
    assert "Never offer more than $50" in first_prompt
    assert "Now $70 back." in second_prompt
    assert result.reply == "Now $30 back."


def test_when_every_attempt_violates_the_first_renderable_fallback_is_sent() -> None:
    step_fb = a_template("step_fb", text="Sorry {{ first_name }}, a colleague will call.",
                         mode=TemplateMode.FALLBACK, scenario="returns", step="s1", scope="step")
    needs_order = a_template("order_fb", text="Order {{ order_id }} is noted.", mode=TemplateMode.FALLBACK)
    plan = a_plan(hard_rules=[CAP], fallbacks=[needs_order, step_fb, GLOBAL_FB],
                  variables={"first_name": "Ada"})
    llm = ScriptedLlm("Still $90 back.")
    result, regenerate = run(a_draft("Here is $80 back."), plan, llm, config(attempts=1))
    assert result.fallback_used
    assert result.fallback_template_id == "step_fb"
    assert result.fallback_reason == "violations"
    assert result.reply == "Sorry Ada, a colleague will call."
    assert result.regeneration_attempts == 1
    assert [attempt.reply for attempt in result.attempts] == ["Here is $80 back.", "Still $90 back."]
    assert len(regenerate.received) == 1


def test_zero_regeneration_attempts_goes_straight_to_the_fallback_after_one_generation() -> None:
    llm = ScriptedLlm()
    result, regenerate = run(a_draft("Here is $80 back."), a_plan(hard_rules=[CAP], fallbacks=[GLOBAL_FB]),
                             llm, config(attempts=0))
    assert regenerate.received == []
    assert llm.requests == []
    assert (result.fallback_used, result.regeneration_attempts) == (True, 0)
    assert result.reply == GLOBAL_FB.text


def test_a_failed_first_generation_falls_back_with_reason_provider_error() -> None:
    result, regenerate = run(a_draft("", failed=True), a_plan(hard_rules=[CAP], fallbacks=[GLOBAL_FB]),
                             ScriptedLlm())
    assert (result.fallback_used, result.fallback_reason) == (True, "provider_error")
    assert result.reply == GLOBAL_FB.text
    assert result.attempts == ()
    assert regenerate.received == []


def test_a_failed_regeneration_falls_back_with_reason_provider_error() -> None:
    llm = ScriptedLlm(ProviderError("upstream 503"))
    result, _ = run(a_draft("Here is $80 back."), a_plan(hard_rules=[CAP]), llm)
    assert (result.fallback_used, result.fallback_reason) == (True, "provider_error")
    assert result.regeneration_attempts == 1
    assert result.reply == SAFE_REPLY


def test_a_regenerate_callable_that_raises_a_provider_error_still_ends_in_the_fallback() -> None:
    def raising(previous: str, violations: Any) -> Draft:
        raise ProviderError("boom")

    result = enforce(a_draft("Here is $80 back."), a_plan(hard_rules=[CAP]),
                     ReplyHandling(variables_for(), raising, lambda t: t), llm=ScriptedLlm(), config=config())
    assert (result.fallback_reason, result.reply) == ("provider_error", SAFE_REPLY)


def test_an_empty_regeneration_ends_in_the_fallback_not_in_the_violating_reply() -> None:
    result, _ = run(a_draft("Here is $80 back."), a_plan(hard_rules=[CAP]), ScriptedLlm("   "))
    assert (result.fallback_used, result.fallback_reason) == (True, "violations")
    assert result.reply == SAFE_REPLY


def test_without_a_fallback_template_the_safe_reply_is_sent_never_the_violating_text() -> None:
    llm = ScriptedLlm("Fine, $85 back.", "OK, $95 back.")
    result, _ = run(a_draft("Here is $80 back."), a_plan(hard_rules=[CAP]), llm,
                    format_reply=lambda text: text + " [web]")
    assert result.reply == SAFE_REPLY + " [web]"
    assert result.fallback_template_id is None
    assert "$" not in result.reply


def test_a_fallback_template_that_breaks_a_hard_constraint_is_not_sent() -> None:
    generous = a_template("generous_fb", text="Sorry! Have $100 on us.", mode=TemplateMode.FALLBACK)
    plan = a_plan(hard_rules=[CAP], fallbacks=[generous, GLOBAL_FB])
    result, _ = run(a_draft("Here is $80 back."), plan, ScriptedLlm(), config(attempts=0))
    assert result.fallback_template_id == "global_fb"


def test_a_constraint_naming_a_missing_value_passes_and_is_recorded() -> None:
    result, _ = run(a_draft("Take 90% off!"), a_plan(hard_rules=[TIER]), ScriptedLlm(), known={})
    assert result.reply == "Take 90% off!"
    assert not result.fallback_used
    assert result.attempts[0].not_applicable == ["tier_cap"]


def test_an_evaluation_error_fails_closed_and_never_quotes_the_value() -> None:
    result, _ = run(a_draft("Take 10% off"), a_plan(hard_rules=[TIER]), ScriptedLlm(), config(attempts=0),
                    known={"max_discount": "secret-tier-value"})
    assert result.fallback_used
    (violation,) = result.attempts[0].violations
    assert violation.rule_id == "tier_cap"
    assert "secret-tier-value" not in violation.message


def test_a_violating_exclusive_template_goes_to_the_fallback_without_regeneration() -> None:
    exclusive = a_template("promo", text="Everyone gets $200 today!", mode=TemplateMode.EXCLUSIVE)
    plan = a_plan(hard_rules=[CAP], fallbacks=[GLOBAL_FB], exclusive=exclusive)
    result, regenerate = run(a_draft(exclusive.text, llm_calls=0), plan, ScriptedLlm(), config(attempts=2))
    assert regenerate.received == []
    assert (result.fallback_used, result.regeneration_attempts) == (True, 0)
    assert result.reply == GLOBAL_FB.text


def test_the_judge_checks_every_subjective_rule_in_one_call_per_draft() -> None:
    llm = ScriptedLlm(verdicts(("no_competitor", False), ("tone", True)),
                      "We can help you today.",
                      verdicts(("no_competitor", True), ("tone", True)))
    plan = a_plan(hard_rules=[CAP, COMPETITOR, TONE])
    result, _ = run(a_draft("Try AcmeCorp instead."), plan, llm)
    assert result.reply == "We can help you today."
    assert [request.task for request in llm.requests] == ["judge", "generation", "judge"]
    assert [[v.rule_id for v in attempt.violations] for attempt in result.attempts] == [["no_competitor"], []]
    assert result.attempts[0].violations[0].lane == "judge"
    assert result.llm_calls == 3
    assert result.regeneration_attempts == 1


def test_an_unreadable_judge_answer_blocks_the_draft_when_failing_closed() -> None:
    plan = a_plan(hard_rules=[TONE], fallbacks=[GLOBAL_FB])
    closed, _ = run(a_draft("Hello there."), plan, ScriptedLlm("PASS"), config(attempts=0))
    assert closed.fallback_used
    opened, _ = run(a_draft("Hello there."), plan, ScriptedLlm("PASS"),
                    config(attempts=0, judge_fails_closed=False))
    assert (opened.fallback_used, opened.reply) == (False, "Hello there.")


def test_with_the_judge_off_no_call_is_made_for_subjective_rules() -> None:
    llm = ScriptedLlm()
    result, _ = run(a_draft("Try AcmeCorp."), a_plan(hard_rules=[COMPETITOR]), llm, config(llm_judge=False))
    assert llm.requests == []
    assert result.reply == "Try AcmeCorp."


def test_the_judge_is_not_called_when_the_last_draft_already_fails_its_expressions() -> None:
    llm = ScriptedLlm()
    result, _ = run(a_draft("Here is $80 back."), a_plan(hard_rules=[CAP, TONE]), llm, config(attempts=0))
    assert llm.requests == []
    assert result.fallback_used


def test_a_rule_listed_twice_is_checked_once() -> None:
    llm = ScriptedLlm(verdicts(("tone", True)))
    result, _ = run(a_draft("Hello."), a_plan(hard_rules=[TONE, TONE]), llm)
    assert len(llm.prompts("judge")[0].split("rule_id:")) == 2
    assert not result.fallback_used


def test_with_no_hard_rules_the_draft_is_sent_as_is() -> None:
    result, _ = run(a_draft("Anything, $1,000."), a_plan(), ScriptedLlm())
    assert (result.reply, result.fallback_used, len(result.attempts)) == ("Anything, $1,000.", False, 1)


def test_the_judge_reads_the_reply_with_stored_pii_masked_but_the_user_gets_it_filled() -> None:
    llm = ScriptedLlm(verdicts(("no_competitor", True)))
    plan = a_plan(hard_rules=[COMPETITOR])
    handling = ReplyHandling(variables_for(), RecordingRegenerate(llm), lambda text: text,
                             mask=lambda text: text.replace("kim@example.com", "‹email›"))
    result = enforce(a_draft("We will write to kim@example.com today."), plan, handling, llm=llm, config=config())
    assert result.reply == "We will write to kim@example.com today."
    [judged] = llm.prompts("judge")
    assert "kim@example.com" not in judged and "‹email›" in judged
