"""The deterministic lane: expressions of hard constraints checked against a reply."""

from __future__ import annotations

import pytest

from chalicelib.focal.enforcement.expressions import check_expressions
from tests.focal.factories import a_bundle, a_loaded, a_published, a_rule

CAP = a_rule("cap", action="never offer more than $50", hard_constraint=True,
             expression="max(amounts(reply) + [0]) <= 50")
TIER_CAP = a_rule("tier_cap", action="no discounts above the tier's limit", hard_constraint=True,
                  expression="max(percents(reply) + [0]) <= max_discount")


def test_a_compliant_reply_has_no_violation() -> None:
    check = check_expressions("A refund of $40 is fine.", [CAP], {"reply": "ignored"})
    assert check.violations == ()
    assert check.not_applicable == ()


def test_a_reply_breaking_the_constraint_is_a_violation_naming_the_rule_and_its_action() -> None:
    check = check_expressions("You get $80 back.", [CAP], {})
    assert [violation.rule_id for violation in check.violations] == ["cap"]
    message = check.violations[0].message
    assert "does not hold" in message
    assert "never offer more than $50" in message
    assert check.violations[0].lane == "expression"


def test_a_constraint_naming_a_missing_value_passes_and_is_recorded_as_not_applicable() -> None:
    check = check_expressions("Take 90% off!", [TIER_CAP], {"max_discount": None})
    assert check.violations == ()
    assert check.not_applicable == ("tier_cap",)


def test_an_evaluation_error_fails_closed_without_quoting_the_value() -> None:
    secret = "PLATINUM-4111-1111"
    check = check_expressions("Take 10% off", [TIER_CAP], {"max_discount": secret})
    assert [violation.rule_id for violation in check.violations] == ["tier_cap"]
    message = check.violations[0].message
    assert "could not be evaluated (TypeError)" in message
    assert secret not in message
    assert "PLATINUM" not in message


def test_rules_without_an_expression_are_left_to_the_judge() -> None:
    subjective = a_rule("tone", action="be polite", hard_constraint=True)
    assert check_expressions("whatever", [subjective], {}) == check_expressions("whatever", [], {})


def test_a_rule_whose_expression_changed_since_compiling_is_checked_by_its_own_text() -> None:
    compiled = {"cap": a_loaded(a_published(a_bundle(rules=[CAP]), version=3,
                                            agent_id="stale-test")).constraints["cap"]}
    stricter = a_rule("cap", action="never offer more than $10", hard_constraint=True,
                      expression="max(amounts(reply) + [0]) <= 10")
    check = check_expressions("Here is $20.", [stricter], {}, compiled=compiled)
    assert [violation.rule_id for violation in check.violations] == ["cap"]


@pytest.mark.parametrize("source", ["len(reply) <", "shout(reply)"])
def test_an_expression_that_cannot_compile_fails_closed(source: str) -> None:
    broken = a_rule("broken", action="stay short", hard_constraint=True, expression=source)
    bundle = a_bundle(rules=[broken])
    compiled = a_loaded(a_published(bundle, version=1, agent_id="broken-test")).constraints
    assert compiled == {}
    check = check_expressions("short", [broken], {}, compiled=compiled)
    assert [violation.rule_id for violation in check.violations] == ["broken"]
    assert "cannot be compiled" in check.violations[0].message
