"""Scenario choice: start and switch by margin over the alternatives; a switch keeps collected fields."""

from __future__ import annotations

from chalicelib.focal.scenario_choice import choose_scenario
from tests.focal.test_scenario import returns_bundle, run, scored


def test_a_scenario_starts_when_it_is_good_enough_and_clearly_ahead() -> None:
    assert choose_scenario([scored("returns", 0.6), scored("cancel", 0.3)], None) == "returns"
    assert choose_scenario([scored("returns", 0.2)], None) is None  # not good enough
    assert choose_scenario([scored("returns", 0.5), scored("cancel", 0.48)], None) is None  # a coin toss


def test_inside_a_scenario_another_takes_over_only_with_a_clear_lead_over_the_active_one() -> None:
    # "actually I want to return it instead" while cancelling: returns far ahead -> switch.
    assert choose_scenario([scored("returns", 0.7), scored("cancel", 0.2)], "cancel") == "returns"
    # An answer to the current step that also brushes another flow does not derail the active one.
    assert choose_scenario([scored("returns", 0.45), scored("cancel", 0.4)], "cancel") is None
    assert choose_scenario([scored("cancel", 0.8)], "cancel") is None  # the active one: nothing to switch to
    assert choose_scenario([scored("returns", 0.25)], "cancel") is None  # not good enough to start at all


def test_a_switch_starts_the_other_scenario_at_its_entry_step_with_the_fields_already_known() -> None:
    decision = run(returns_bundle(), at="reason", known={"order_id": "A1"}, signal="start",
                   scenario_id="billing")
    assert (decision.action, decision.scenario_id, decision.step_id) == ("start", "billing", "b1")

    back = run(returns_bundle(), at="reason", known={"order_id": "A1", "reason": "late"}, signal="start",
               scenario_id="returns")  # naming the active scenario is not a switch: it continues
    assert back.scenario_id == "returns" and back.action != "start"
