"""A bundle validates as a whole: every broken reference is reported with its path, all at once."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.bundle import AgentBundle, parse_bundle
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.rule import Rule


def bundle(**parts: Any) -> dict[str, Any]:
    return {"agent": {"name": "Desk"}, **parts}


def problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as raised:
        parse_bundle(document)
    return {error["path"]: error["message"] for error in raised.value.details["errors"]}


def test_every_unknown_reference_is_reported_with_the_path_of_the_offending_item() -> None:
    found = problems(bundle(
        rules=[{"id": "r1", "condition": "c", "action": "a", "templates": ["refund_fb"], "tools": ["nope"],
                "scope": "step", "scenario": "returns", "step": "ghost", "depends_on": ["r9"]}],
        scenarios=[{"id": "returns", "condition": "c", "entry_step": "start",
                    "steps": [{"id": "ask", "required_fields": ["email"], "transitions": [{"to": "end"}]}]}],
    ))
    assert found == {
        "rules[0].step": "unknown step 'ghost' in scenario 'returns'",
        "rules[0].templates[0]": "unknown template 'refund_fb'",
        "rules[0].tools[0]": "unknown tool 'nope'",
        "rules[0].depends_on[0]": "unknown rule 'r9'",
        "scenarios[0].entry_step": "unknown step 'start'",
        "scenarios[0].steps[0].required_fields": "unknown field 'email'",
        "scenarios[0].steps[0].transitions[0].to": "unknown step 'end'",
        "scenarios[0].steps[0].transitions[0]": "a transition needs a `condition` or an `expression`",
    }


def test_a_typo_in_a_hard_constraint_expression_is_refused_at_publish_time() -> None:
    found = problems(bundle(rules=[{"id": "cap", "condition": "c", "action": "a", "hard_constraint": True,
                                    "expression": "max(amounts(reply)) <= limit"}]))
    assert found == {"rules[0].expression": "unknown name 'limit' in expression 'max(amounts(reply)) <= limit'"}


def test_wrong_types_and_unknown_config_keys_are_reported_together() -> None:
    found = problems(bundle(agent={"name": "Desk", "config": {"llm": {"colour": "blue"}}},
                            rules=[{"id": "r1", "condition": "c", "action": "a", "priority": "high"}]))
    assert set(found) == {"rules[0].priority", "agent.config.llm.colour"}


def test_duplicate_ids_are_refused() -> None:
    rule = {"id": "r1", "condition": "c", "action": "a"}
    assert problems(bundle(rules=[rule, rule])) == {"rules[1].id": "duplicate id 'r1'"}


def test_a_valid_bundle_finds_its_items_by_id() -> None:
    parsed = parse_bundle(bundle(rules=[{"id": "r1", "condition": "c", "action": "a", "hard_constraint": True}]))
    assert parsed.rule("r1") is not None and parsed.rule("r2") is None
    assert [rule.id for rule in parsed.always_enforced] == ["r1"]


def test_a_copy_with_other_rules_finds_the_copys_rules() -> None:
    original = AgentBundle.model_validate(bundle(rules=[{"id": "old", "condition": "c", "action": "a"}]))
    assert original.rule("old") is not None  # fills the lookup of the original
    copy = original.model_copy(update={"rules": [Rule(id="new", condition="c", action="a")]})
    assert copy.rule("new") is not None and copy.rule("old") is None


def test_a_field_pattern_that_is_no_regular_expression_is_refused_with_its_path() -> None:
    found = problems(bundle(fields=[{"name": "order", "pattern": "NW-[0-9"}]))
    assert list(found) == ["fields[0]"] and "pattern" in found["fields[0]"]
