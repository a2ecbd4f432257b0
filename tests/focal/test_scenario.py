"""Scenario orchestration: start, hop through transitions, stop on missing fields, exit, complete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.scenario import AnyOf
from chalicelib.domain.session import ScenarioState
from chalicelib.focal.scenario import TransitionScope, condition_id, orchestrate_scenario
from chalicelib.focal.types import ScenarioDecision, ScoredItem, Understanding
from tests.focal.factories import a_bundle, a_field, a_loaded, a_scenario, a_step, a_transition


def returns_bundle() -> AgentBundle:
    """identify (order_id) -> reason (reason) -> confirm -> done (terminal)."""
    steps = [
        a_step(
            "identify",
            required=["order_id"],
            transitions=[a_transition("reason", expression="order_id != ''")],
        ),
        a_step(
            "reason",
            required=["reason"],
            transitions=[
                a_transition("human", expression='reason == "broken"'),
                a_transition("confirm", expression="len(reason) > 0"),
            ],
        ),
        a_step("confirm", transitions=[a_transition("done", condition="the user agrees")]),
        a_step("done", terminal=True),
        a_step("human", handoff=True),
    ]
    fields = [a_field("order_id"), a_field("reason"), a_field("email"), a_field("name"), a_field("zip")]
    other = a_scenario("billing", condition="the user asks about an invoice", steps=[a_step("b1")])
    return a_bundle(scenarios=[a_scenario("returns", steps=steps), other], fields=fields)


def scored(scenario_id: str, score: float) -> ScoredItem:
    return ScoredItem(kind="scenario", item_id=scenario_id, score=score, lexical=score, vector=score)


def run(
    bundle: AgentBundle,
    *,
    at: str | None = None,
    known: Mapping[str, Any] | None = None,
    signal: Literal["none", "start", "continue", "exit"] = "none",
    scenario_id: str | None = None,
    conditions: Sequence[str] = (),
    scenarios: Sequence[ScoredItem] = (),
    variables: Mapping[str, Any] | None = None,
) -> ScenarioDecision:
    state = ScenarioState(scenario_id="returns", step_id=at) if at else None
    understanding = Understanding(
        scenario_signal=signal,
        scenario_id=scenario_id,
        conditions_true=tuple(conditions),
    )
    return orchestrate_scenario(
        a_loaded(bundle), state, understanding, scenarios, TransitionScope(known or {}, variables or {}, 3)
    )


def test_no_active_scenario_and_no_signal_means_no_scenario() -> None:
    assert run(returns_bundle(), scenarios=[scored("returns", 0.9)]).action == "none"


def test_the_scenario_the_understanding_names_starts_at_its_entry_step() -> None:
    decision = run(returns_bundle(), signal="start", scenario_id="returns")

    assert decision.action == "start"
    assert (decision.scenario_id, decision.step_id, decision.from_step) == ("returns", "identify", None)
    assert decision.path == ("identify",)
    assert decision.missing_fields == ("order_id",)


def test_a_start_signal_starts_the_best_retrieved_scenario_above_the_threshold() -> None:
    bundle = returns_bundle()

    started = run(bundle, signal="start", scenarios=[scored("returns", 0.4), scored("billing", 0.7)])
    too_weak = run(bundle, signal="start", scenarios=[scored("returns", 0.2)])

    assert (started.action, started.scenario_id) == ("start", "billing")
    assert too_weak.action == "none"


def test_a_named_scenario_that_does_not_exist_falls_back_to_retrieval() -> None:
    decision = run(returns_bundle(), signal="start", scenario_id="nope", scenarios=[scored("returns", 0.5)])

    assert decision.scenario_id == "returns"


def test_a_user_who_gives_everything_at_once_skips_ahead_several_steps() -> None:
    decision = run(
        returns_bundle(),
        signal="start",
        scenario_id="returns",
        known={"order_id": "A1", "reason": "too small"},
    )

    assert decision.action == "start"
    assert decision.path == ("identify", "reason", "confirm")
    assert decision.step_id == "confirm" and decision.missing_fields == ()


def test_no_hop_while_a_required_field_of_the_current_step_is_missing() -> None:
    decision = run(returns_bundle(), at="reason", known={"order_id": "A1"})

    assert decision.action == "continue"
    assert (decision.step_id, decision.from_step, decision.path) == ("reason", "reason", ("reason",))
    assert decision.missing_fields == ("reason",)


def test_the_first_holding_transition_in_declared_order_wins() -> None:
    decision = run(returns_bundle(), at="reason", known={"reason": "broken"})

    assert decision.step_id == "human"
    assert decision.handoff is True
    assert decision.action == "transition"


def test_a_condition_transition_holds_when_the_understanding_judged_it_true() -> None:
    bundle = returns_bundle()

    not_judged = run(bundle, at="confirm")
    judged = run(bundle, at="confirm", conditions=[condition_id("returns", "confirm", 0)])

    assert not_judged.action == "continue" and not_judged.step_id == "confirm"
    assert judged.step_id == "done"


def test_reaching_a_terminal_step_completes_the_scenario() -> None:
    decision = run(returns_bundle(), at="confirm", conditions=["returns/confirm/0"])

    assert decision.action == "complete"
    assert decision.path == ("confirm", "done")


def test_an_expression_naming_a_missing_value_does_not_hold() -> None:
    steps = [a_step("s1", transitions=[a_transition("s2", expression='email != "x"')]), a_step("s2")]
    bundle = a_bundle(scenarios=[a_scenario("returns", steps=steps)], fields=[a_field("email")])

    assert run(bundle, at="s1").step_id == "s1"
    assert run(bundle, at="s1", known={"email": "a@b.co"}).step_id == "s2"


def test_transition_expressions_see_tool_results_and_the_message() -> None:
    steps = [
        a_step(
            "s1",
            transitions=[
                a_transition("s2", expression='tools["lookup"]["status"] == "shipped"'),
                a_transition("s3", expression='contains(message, "cancel")'),
            ],
        ),
        a_step("s2"),
        a_step("s3"),
    ]
    bundle = a_bundle(scenarios=[a_scenario("returns", steps=steps)])

    by_tool = run(bundle, at="s1", variables={"tools": {"lookup": {"status": "shipped"}}})
    by_message = run(bundle, at="s1", variables={"message": "please cancel it"})
    neither = run(bundle, at="s1", variables={"message": "hello"})

    assert (by_tool.step_id, by_message.step_id, neither.step_id) == ("s2", "s3", "s1")


def test_a_cycle_is_never_followed_twice_in_one_turn() -> None:
    steps = [
        a_step("a", transitions=[a_transition("b", expression="turn_number > 0")]),
        a_step("b", transitions=[a_transition("a", expression="turn_number > 0")]),
    ]
    bundle = a_bundle(scenarios=[a_scenario("returns", steps=steps)])

    decision = run(bundle, at="a")

    assert decision.path == ("a", "b") and decision.step_id == "b"


def test_an_any_of_requirement_lets_the_step_advance_with_either_group() -> None:
    steps = [
        a_step(
            "s1",
            required=[AnyOf(any_of=[["email"], ["name", "zip"]])],  # type: ignore[list-item]
            transitions=[a_transition("s2", expression="turn_number > 0")],
        ),
        a_step("s2"),
    ]
    bundle = a_bundle(
        scenarios=[a_scenario("returns", steps=steps)],
        fields=[a_field("email"), a_field("name"), a_field("zip")],
    )

    partial = run(bundle, at="s1", known={"name": "Ada"})
    full = run(bundle, at="s1", known={"name": "Ada", "zip": "75001"})

    assert partial.step_id == "s1" and partial.missing_fields == ("email",)
    assert full.step_id == "s2"


def test_the_exit_signal_leaves_the_active_scenario() -> None:
    decision = run(returns_bundle(), at="reason", signal="exit")

    assert decision == ScenarioDecision(action="exit", scenario_id="returns", from_step="reason")


def test_an_exit_signal_without_an_active_scenario_starts_nothing() -> None:
    assert run(returns_bundle(), signal="exit", scenario_id="returns").action == "none"


def test_a_session_on_a_step_the_bundle_no_longer_has_exits() -> None:
    decision = run(returns_bundle(), at="gone")

    assert decision.action == "exit" and decision.from_step == "gone"


def test_starting_on_a_handoff_entry_step_hands_off() -> None:
    bundle = a_bundle(scenarios=[a_scenario("returns", steps=[a_step("h", handoff=True)])])

    decision = run(bundle, signal="start", scenario_id="returns")

    assert decision.handoff is True and decision.action == "start"
