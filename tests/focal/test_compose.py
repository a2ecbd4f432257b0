"""The offline reply: made only of the tenant's templates, field questions and values."""

from __future__ import annotations

from chalicelib.domain.session import PendingConfirmation
from chalicelib.focal.compose import NOTHING_APPLIES
from chalicelib.focal.generate import fill_placeholders
from chalicelib.focal.tools import ToolsResult
from chalicelib.focal.types import ScenarioDecision
from tests.focal.factories import a_bundle, a_field, a_rule, a_scenario, a_step, a_template, a_tool
from tests.focal.test_plan import FALLBACK, plan_for

IN_STEP = ScenarioDecision(action="continue", scenario_id="returns", step_id="s1")


def asking(*missing: str) -> ScenarioDecision:
    return ScenarioDecision(action="continue", scenario_id="returns", step_id="s1", missing_fields=missing)


def test_missing_fields_are_asked_with_the_tenants_own_questions() -> None:
    fields = [a_field("order_id", description="The order number", ask="What is your order number?"),
              a_field("email", ask="And the email you ordered with, {{ name }}?"), a_field("name")]
    bundle = a_bundle(fields=fields, scenarios=[a_scenario("returns", steps=[a_step("s1", instruction="Ask")])])

    plan = plan_for(bundle, scenario=asking("order_id", "email"), known={"name": "Ana"})

    # The draft keeps its placeholders; generation fills them exactly once.
    assert plan.draft == "What is your order number? And the email you ordered with, {{ name }}?"
    assert (fill_placeholders(plan.draft, plan.variables, plan.placeholders)
            == "What is your order number? And the email you ordered with, Ana?")


def test_a_field_without_a_question_is_asked_through_the_steps_question_template() -> None:
    templates = [a_template("ask_order", "Which order is it, and which email did you use?", scope="step",
                            scenario="returns", step="s1")]
    bundle = a_bundle(fields=[a_field("order_id", description="Why the item is coming back")],
                      templates=templates, scenarios=[a_scenario("returns", steps=[a_step("s1")])])

    assert plan_for(bundle, scenario=asking("order_id")).draft == "Which order is it, and which email did you use?"


def test_with_no_question_written_the_description_makes_a_grammatical_one() -> None:
    fields = [a_field("reason", description="Why the item is coming back"),
              a_field("order_id", description="The order number printed on the email, e.g. NW-204518")]
    bundle = a_bundle(fields=fields, scenarios=[a_scenario("returns", steps=[a_step("s1")])])

    assert plan_for(bundle, scenario=asking("reason")).draft == "Could you tell me why the item is coming back?"
    assert (plan_for(bundle, scenario=asking("order_id")).draft
            == "Could you tell me the order number printed on the email?")


def test_statements_come_first_then_one_question() -> None:
    templates = [a_template("sorry", "Sorry it arrived damaged."),
                 a_template("confirm", "Shall I refund it?", scope="step", scenario="returns", step="s1")]
    bundle = a_bundle(rules=[a_rule("damage", templates=["sorry"])], templates=templates,
                      tools=[a_tool("refund", description="Refund the order")],
                      scenarios=[a_scenario("returns", steps=[a_step("s1")])])
    tools = ToolsResult(confirmation_request=PendingConfirmation(tool_id="refund", inputs={}))

    plan = plan_for(bundle, ["damage"], scenario=IN_STEP, tools=tools)

    assert plan.draft == "Sorry it arrived damaged. Shall I refund it?"


def test_when_nothing_applies_the_agent_says_so_in_its_own_words_with_what_it_helps_with() -> None:
    templates = [a_template("hours_reply", "We open at 9."),
                 a_template("sorry", "I can't help with that. I can help with {{ topics }}.", FALLBACK),
                 a_template("step_fb", "Step trouble.", FALLBACK)]
    rules = [a_rule("hours", name="Opening hours", templates=["hours_reply"]),
             a_rule("cap", name="Refund cap", hard_constraint=True, expression="len(reply) < 900"),
             a_rule("loud", name="Never shout", action="never shout")]
    steps = [a_step("s1", templates=["step_fb"])]
    bundle = a_bundle(rules=rules, templates=templates,
                      scenarios=[a_scenario("returns", name="Returns and refunds", steps=steps)])

    plan = plan_for(bundle)
    assert (fill_placeholders(plan.draft, plan.variables, plan.placeholders)
            == "I can't help with that. I can help with returns and refunds, opening hours.")
    assert plan_for(a_bundle()).draft == NOTHING_APPLIES  # no fallback written: one plain line
