"""Rule selection: confirmation, filters and relationships, each with the reason it records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chalicelib.domain.rule import Rule
from chalicelib.domain.session import RuleUsage, ScenarioState
from chalicelib.focal.select_rules import TurnPosition, select_rules
from chalicelib.focal.types import RuleDecision, ScoredItem, Understanding
from tests.focal.factories import a_bundle, a_rule


def scored(rule_id: str, score: float = 0.5) -> ScoredItem:
    return ScoredItem(kind="rule", item_id=rule_id, score=score, lexical=score, vector=score)


def decide(
    rules: Sequence[Rule],
    candidates: Sequence[str] | Sequence[ScoredItem],
    confirmed: Sequence[str],
    *,
    usage: Mapping[str, RuleUsage] | None = None,
    turn: int = 5,
    scenario: str | None = None,
    step: str | None = None,
) -> dict[str, RuleDecision]:
    items = [c if isinstance(c, ScoredItem) else scored(c) for c in candidates]
    decisions = select_rules(
        items,
        Understanding(applicable_rules=tuple(confirmed)),
        a_bundle(rules=rules),
        usage or {},
        TurnPosition(turn, ScenarioState(scenario_id=scenario, step_id=step) if scenario and step else None),
    )
    return {decision.rule_id: decision for decision in decisions}


def reasons(decisions: Mapping[str, RuleDecision]) -> dict[str, str]:
    return {rule_id: decision.reason for rule_id, decision in decisions.items()}


def test_a_confirmed_candidate_applies_and_an_unconfirmed_one_does_not() -> None:
    decisions = decide([a_rule("r1"), a_rule("r2")], ["r1", "r2"], ["r1"])

    assert decisions["r1"].selected and decisions["r1"].reason == "applies"
    assert not decisions["r2"].selected and decisions["r2"].reason == "not_confirmed"


def test_disabled_and_unknown_rules_never_apply() -> None:
    decisions = decide([a_rule("r1", enabled=False)], ["r1", "ghost"], ["r1", "ghost"])

    assert reasons(decisions) == {"r1": "disabled", "ghost": "unknown"}


def test_scenario_and_step_rules_apply_only_where_they_are_scoped() -> None:
    rules = [a_rule("g"), a_rule("sc", scenario="returns"), a_rule("st", scenario="returns", step="s2")]
    ids = ["g", "sc", "st"]

    outside = decide(rules, ids, ids)
    in_scenario = decide(rules, ids, ids, scenario="returns", step="s1")
    at_step = decide(rules, ids, ids, scenario="returns", step="s2")

    assert reasons(outside) == {"g": "applies", "sc": "out_of_scope", "st": "out_of_scope"}
    assert reasons(in_scenario) == {"g": "applies", "sc": "applies", "st": "out_of_scope"}
    assert reasons(at_step) == {"g": "applies", "sc": "applies", "st": "applies"}


def test_a_rule_that_fired_at_turn_t_may_fire_again_at_t_plus_cooldown_plus_one() -> None:
    rules = [a_rule("r1", cooldown_turns=2)]
    usage = {"r1": RuleUsage(fires=1, last_turn=5)}

    assert decide(rules, ["r1"], ["r1"], usage=usage, turn=6)["r1"].reason == "cooldown"
    assert decide(rules, ["r1"], ["r1"], usage=usage, turn=7)["r1"].reason == "cooldown"
    assert decide(rules, ["r1"], ["r1"], usage=usage, turn=8)["r1"].reason == "applies"


def test_a_rule_without_cooldown_may_fire_on_consecutive_turns() -> None:
    usage = {"r1": RuleUsage(fires=3, last_turn=5)}

    assert decide([a_rule("r1")], ["r1"], ["r1"], usage=usage, turn=6)["r1"].selected


def test_max_fires_stops_a_rule_once_it_fired_that_many_times() -> None:
    rules = [a_rule("r1", max_fires_per_session=2)]

    once = decide(rules, ["r1"], ["r1"], usage={"r1": RuleUsage(fires=1, last_turn=1)})
    twice = decide(rules, ["r1"], ["r1"], usage={"r1": RuleUsage(fires=2, last_turn=2)})

    assert once["r1"].selected
    assert twice["r1"].reason == "max_fires"


def test_a_rule_whose_dependency_is_not_selected_is_dropped() -> None:
    rules = [a_rule("r1", depends_on=["r2"]), a_rule("r2"), a_rule("r3", depends_on=["r2"])]

    without = decide(rules, ["r1", "r2"], ["r1"])
    with_dependency = decide(rules, ["r1", "r2"], ["r1", "r2"])

    assert without["r1"].reason == "missing_dependency:r2" and not without["r1"].selected
    assert with_dependency["r1"].selected


def test_dependencies_are_followed_until_nothing_changes() -> None:
    rules = [a_rule("a", depends_on=["b"]), a_rule("b", depends_on=["c"]), a_rule("c", enabled=False)]

    decisions = decide(rules, ["a", "b", "c"], ["a", "b", "c"])

    assert reasons(decisions) == {"a": "missing_dependency:b", "b": "missing_dependency:c", "c": "disabled"}


def test_an_entailed_rule_is_pulled_in_with_its_reason() -> None:
    rules = [a_rule("r3", entails=["r4"]), a_rule("r4", entails=["r5"]), a_rule("r5")]

    decisions = decide(rules, ["r3"], ["r3"])

    assert reasons(decisions) == {"r3": "applies", "r4": "entailed_by:r3", "r5": "entailed_by:r4"}
    assert all(decision.selected for decision in decisions.values())


def test_an_entailed_candidate_that_was_not_confirmed_is_selected_anyway() -> None:
    rules = [a_rule("r3", entails=["r4"]), a_rule("r4")]

    decisions = decide(rules, ["r3", "r4"], ["r3"])

    assert decisions["r4"].reason == "entailed_by:r3" and decisions["r4"].selected


def test_an_entailed_rule_still_passes_its_own_filters() -> None:
    rules = [
        a_rule("r3", entails=["cool", "maxed", "scoped"]),
        a_rule("cool", cooldown_turns=3),
        a_rule("maxed", max_fires_per_session=1),
        a_rule("scoped", scenario="returns"),
    ]
    usage = {"cool": RuleUsage(fires=1, last_turn=4), "maxed": RuleUsage(fires=1, last_turn=1)}

    decisions = decide(rules, ["r3"], ["r3"], usage=usage, turn=5)

    assert reasons(decisions) == {
        "r3": "applies",
        "cool": "cooldown",
        "maxed": "max_fires",
        "scoped": "out_of_scope",
    }


def test_an_entailed_rule_goes_when_the_rule_that_entailed_it_goes() -> None:
    rules = [a_rule("r3", entails=["r4"], depends_on=["r9"]), a_rule("r4"), a_rule("r9")]

    decisions = decide(rules, ["r3"], ["r3"])

    assert decisions["r3"].reason == "missing_dependency:r9"
    assert decisions["r4"].reason == "entailer_dropped:r3" and not decisions["r4"].selected


def test_a_rule_entailed_twice_keeps_its_place_while_one_entailer_remains() -> None:
    rules = [
        a_rule("a", entails=["x"], depends_on=["missing"]),
        a_rule("b", entails=["x"]),
        a_rule("x"),
        a_rule("missing"),
    ]

    decisions = decide(rules, ["a", "b"], ["a", "b"])

    assert decisions["x"].selected


def test_of_two_excluding_rules_the_higher_priority_one_wins() -> None:
    rules = [a_rule("r12", priority=5, excludes=["r1"]), a_rule("r1", priority=1)]

    decisions = decide(rules, [scored("r1", 0.9), scored("r12", 0.2)], ["r1", "r12"])

    assert decisions["r12"].selected
    assert decisions["r1"].reason == "excluded_by:r12" and not decisions["r1"].selected


def test_the_exclusion_holds_whichever_side_declares_it() -> None:
    rules = [a_rule("low", priority=0, excludes=["high"]), a_rule("high", priority=3)]

    decisions = decide(rules, ["low", "high"], ["low", "high"])

    assert decisions["high"].selected and decisions["low"].reason == "excluded_by:high"


def test_equal_priority_exclusions_are_settled_by_score_then_id() -> None:
    rules = [a_rule("a", excludes=["b"]), a_rule("b")]

    by_score = decide(rules, [scored("a", 0.3), scored("b", 0.8)], ["a", "b"])
    by_id = decide(rules, [scored("a", 0.5), scored("b", 0.5)], ["a", "b"])

    assert by_score["b"].selected and by_score["a"].reason == "excluded_by:b"
    assert by_id["a"].selected and by_id["b"].reason == "excluded_by:a"


def test_mutually_excluding_rules_never_remove_each_other() -> None:
    rules = [a_rule("a", excludes=["b"]), a_rule("b", excludes=["a"])]

    decisions = decide(rules, ["a", "b"], ["a", "b"])

    assert [rule_id for rule_id, d in decisions.items() if d.selected] == ["a"]


def test_a_rule_excluded_by_a_loser_survives() -> None:
    rules = [
        a_rule("top", priority=9, excludes=["mid"]),
        a_rule("mid", priority=5, excludes=["low"]),
        a_rule("low", priority=1),
    ]

    decisions = decide(rules, ["top", "mid", "low"], ["top", "mid", "low"])

    assert reasons(decisions) == {"top": "applies", "low": "applies", "mid": "excluded_by:top"}


def test_selected_decisions_come_first_by_priority_then_the_rest_in_candidate_order() -> None:
    rules = [
        a_rule("low", priority=1),
        a_rule("high", priority=9),
        a_rule("off", enabled=False),
        a_rule("unsure"),
    ]

    decisions = select_rules(
        [scored("low"), scored("off"), scored("high"), scored("unsure")],
        Understanding(applicable_rules=("low", "high", "off")),
        a_bundle(rules=rules),
        {},
        TurnPosition(1),
    )

    assert [(d.rule_id, d.selected) for d in decisions] == [
        ("high", True),
        ("low", True),
        ("off", False),
        ("unsure", False),
    ]
    assert decisions[0].score == 0.5
