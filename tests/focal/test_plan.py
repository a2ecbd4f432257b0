"""Planning the reply: exclusive and suggested templates, asks, confirmations, constraints, fallbacks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.session import PendingConfirmation
from chalicelib.domain.template import TemplateMode
from chalicelib.focal.generate import fill_placeholders
from chalicelib.focal.plan import make_plan
from chalicelib.focal.tools import ToolsResult
from chalicelib.focal.types import Plan, RuleDecision, ScenarioDecision
from tests.focal.factories import a_bundle, a_field, a_loaded, a_rule, a_scenario, a_step, a_template, a_tool

EXCLUSIVE, SUGGEST, FALLBACK = TemplateMode.EXCLUSIVE, TemplateMode.SUGGEST, TemplateMode.FALLBACK


def plan_for(
    bundle: AgentBundle,
    selected: Sequence[str] = (),
    *,
    scenario: ScenarioDecision | None = None,
    tools: ToolsResult | None = None,
    known: Mapping[str, Any] | None = None,
) -> Plan:
    decisions = [RuleDecision(rule_id, True, "applies") for rule_id in selected]
    decisions.append(RuleDecision("unselected", False, "not_confirmed"))
    return make_plan(
        a_loaded(bundle),
        decisions,
        scenario or ScenarioDecision(action="none"),
        tools or ToolsResult(),
        known or {},
    )


def at_step(
    step: str = "s1", missing: tuple[str, ...] = (), action: Literal["continue", "complete"] = "continue"
) -> ScenarioDecision:
    return ScenarioDecision(
        action=action,
        scenario_id="returns",
        step_id=step,
        missing_fields=missing,
    )


def test_the_exclusive_template_of_the_highest_priority_rule_is_the_reply() -> None:
    templates = [a_template("low_x", "Low", EXCLUSIVE), a_template("high_x", "High {{ name }}", EXCLUSIVE)]
    rules = [a_rule("low", templates=["low_x"], priority=1), a_rule("high", templates=["high_x"], priority=5)]
    bundle = a_bundle(rules=rules, templates=templates, fields=[a_field("name")])

    plan = plan_for(bundle, ["low", "high"], known={"name": "Ada"})

    assert plan.exclusive is not None and plan.exclusive.id == "high_x"
    assert plan.draft == "High {{ name }}"  # filled once, by generation
    assert fill_placeholders(plan.draft, plan.variables, plan.placeholders) == "High Ada"


def test_an_exclusive_template_with_a_missing_placeholder_value_is_passed_over() -> None:
    templates = [
        a_template("needs", "Hi {{ name }}", EXCLUSIVE),
        a_template("step_x", "Step reply", EXCLUSIVE),
    ]
    steps = [a_step("s1", templates=["step_x"])]
    bundle = a_bundle(
        rules=[a_rule("r1", templates=["needs"])],
        templates=templates,
        fields=[a_field("name")],
        scenarios=[a_scenario("returns", steps=steps)],
    )

    plan = plan_for(bundle, ["r1"], scenario=at_step())

    assert plan.exclusive is not None and plan.exclusive.id == "step_x"


def test_no_exclusive_template_while_a_confirmation_must_be_asked() -> None:
    bundle = a_bundle(
        rules=[a_rule("r1", templates=["x"])],
        templates=[a_template("x", "Done", EXCLUSIVE)],
        tools=[a_tool("cancel", description="Cancel your order")],
    )
    tools = ToolsResult(confirmation_request=PendingConfirmation(tool_id="cancel", inputs={}))

    plan = plan_for(bundle, ["r1"], tools=tools)

    assert plan.exclusive is None
    assert plan.confirm_tool == "cancel"
    assert plan.draft.endswith("Shall I go ahead and cancel your order? Please answer yes or no.")


def test_suggestions_come_from_selected_rules_and_the_current_step() -> None:
    templates = [
        a_template("rule_s", "From rule"),
        a_template("step_s", "From step"),
        a_template("scoped_s", "Scoped", scope="step", scenario="returns", step="s1"),
        a_template("other_s", "Unselected"),
    ]
    rules = [a_rule("r1", templates=["rule_s"]), a_rule("r2", templates=["other_s"])]
    bundle = a_bundle(
        rules=rules,
        templates=templates,
        scenarios=[a_scenario("returns", steps=[a_step("s1", templates=["step_s"])])],
    )

    plan = plan_for(bundle, ["r1"], scenario=at_step())

    assert [t.id for t in plan.suggestions] == ["rule_s", "step_s", "scoped_s"]
    assert plan.draft == "From rule From step Scoped"


def test_instructions_are_the_selected_rule_actions_highest_priority_first() -> None:
    rules = [a_rule("a", action="be brief", priority=1), a_rule("b", action="apologise", priority=7)]

    plan = plan_for(a_bundle(rules=rules), ["a", "b"])

    assert plan.instructions == ("apologise", "be brief")
    assert "apologise" not in plan.draft.lower() and "brief" not in plan.draft.lower()  # for a model only


def test_missing_fields_become_a_question_using_field_descriptions() -> None:
    fields = [
        a_field("order_id", description="order number"),
        a_field("zip_code"),
        a_field("email", description="The email on the account."),
    ]
    bundle = a_bundle(
        fields=fields, scenarios=[a_scenario("returns", steps=[a_step("s1", instruction="Identify")])]
    )

    one = plan_for(bundle, scenario=at_step(missing=("order_id",)))
    three = plan_for(bundle, scenario=at_step(missing=("order_id", "zip_code", "email")))

    assert one.ask_fields == ("order_id",)
    assert one.draft == "Could you tell me your order number?"
    assert three.draft == "Could you tell me your order number, your zip code and the email on the account?"
    assert one.step_instruction == "Identify"


def test_a_completed_scenario_asks_for_nothing() -> None:
    bundle = a_bundle(scenarios=[a_scenario("returns", steps=[a_step("s1", terminal=True)])])

    plan = plan_for(bundle, scenario=at_step(missing=("order_id",), action="complete"))

    assert plan.ask_fields == ()


def test_the_step_instruction_is_never_the_draft() -> None:
    # It used to be recited to the customer ("Thank the user."): it is an instruction to a model.
    bundle = a_bundle(scenarios=[a_scenario("returns", steps=[a_step("s1", instruction="thank the user")])])

    assert "thank" not in plan_for(bundle, scenario=at_step()).draft.lower()


def test_hard_rules_are_selected_hard_constraints_plus_global_ones_without_duplicates() -> None:
    hard = a_rule("hard", hard_constraint=True)
    soft = a_rule("soft")
    always = a_rule("global_hard", hard_constraint=True)

    plan = plan_for(
        a_bundle(rules=[hard, soft, always]), ["hard", "soft", "global_hard"]
    )

    assert [rule.id for rule in plan.hard_rules] == ["hard", "global_hard"]


def test_fallbacks_are_ordered_step_scenario_rule_then_global() -> None:
    templates = [
        a_template("global_fb", "Sorry.", FALLBACK),
        a_template("rule_fb", "Rule sorry.", FALLBACK),
        a_template("scenario_fb", "Scenario sorry.", FALLBACK, scope="scenario", scenario="returns"),
        a_template("step_scoped_fb", "Step sorry.", FALLBACK, scope="step", scenario="returns", step="s1"),
        a_template("step_attached_fb", "Attached sorry.", FALLBACK),
        a_template("other_step_fb", "Elsewhere.", FALLBACK, scope="step", scenario="returns", step="s2"),
        a_template("unselected_rule_fb", "Not this.", FALLBACK),
    ]
    rules = [a_rule("r1", templates=["rule_fb"]), a_rule("r2", templates=["unselected_rule_fb"])]
    steps = [a_step("s1", templates=["step_attached_fb"]), a_step("s2")]
    bundle = a_bundle(rules=rules, templates=templates, scenarios=[a_scenario("returns", steps=steps)])

    in_step = plan_for(bundle, ["r1"], scenario=at_step())
    outside = plan_for(bundle, ["r1"])

    assert [t.id for t in in_step.fallbacks] == [
        "step_attached_fb",
        "step_scoped_fb",
        "scenario_fb",
        "rule_fb",
        "global_fb",
    ]
    assert [t.id for t in outside.fallbacks] == ["rule_fb", "global_fb"]


def test_handoff_comes_from_a_selected_rule_or_the_scenario() -> None:
    bundle = a_bundle(rules=[a_rule("human", handoff=True), a_rule("plain")])

    assert plan_for(bundle, ["human"]).handoff is True
    assert plan_for(bundle, ["plain"]).handoff is False
    assert plan_for(bundle, scenario=ScenarioDecision(action="none", handoff=True)).handoff is True


def test_variables_hold_known_values_and_tool_results_for_placeholders() -> None:
    templates = [a_template("s", "Your parcel is {{ tools.lookup.status }}, {{ name }}.")]
    bundle = a_bundle(rules=[a_rule("r1", templates=["s"])], templates=templates, fields=[a_field("name")])

    plan = plan_for(
        bundle,
        ["r1"],
        known={"name": "Ada", "blank": ""},
        tools=ToolsResult(results={"lookup": {"status": "shipped"}}),
    )

    assert plan.variables == {"name": "Ada", "tools": {"lookup": {"status": "shipped"}}}
    assert fill_placeholders(plan.draft, plan.variables, plan.placeholders) == "Your parcel is shipped, Ada."


def test_a_confirmation_without_a_tool_description_names_the_tool() -> None:
    tools = ToolsResult(confirmation_request=PendingConfirmation(tool_id="ghost", inputs={}))

    plan = plan_for(a_bundle(), tools=tools)

    assert plan.draft == "Shall I go ahead and run ghost? Please answer yes or no."


def test_a_suggestion_is_followed_by_the_question_for_missing_fields_unless_it_asks_already() -> None:
    templates = [a_template("policy", "Returns are free within 30 days."), a_template("asks", "Which order is it?")]
    rules = [a_rule("r1", templates=["policy"]), a_rule("r2", templates=["asks"])]
    bundle = a_bundle(rules=rules, templates=templates, fields=[a_field("order_id", description="order number")],
                      scenarios=[a_scenario("returns", steps=[a_step("s1")])])
    told = plan_for(bundle, ["r1"], scenario=at_step(missing=("order_id",)))
    asked = plan_for(bundle, ["r2"], scenario=at_step(missing=("order_id",)))
    assert told.draft == "Returns are free within 30 days. Could you tell me your order number?"
    assert asked.draft == "Which order is it?"


def test_guardrails_and_asks_in_rule_actions_are_not_recited_to_the_user() -> None:
    rules = [a_rule("a", action="never promise a refund above $500", priority=9),
             a_rule("b", action="ask for the order number", priority=8),
             a_rule("c", action="tell the customer that the customer's parcel ships tomorrow")]
    plan = plan_for(a_bundle(rules=rules), ["a", "b", "c"])
    assert "parcel" not in plan.draft and "order number" not in plan.draft
