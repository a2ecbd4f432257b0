"""A hostile tenant's constraint expressions, played over HTTP: refused at publish with the path of
the offending expression, or, when only a turn's data can blow them up, stopped by the evaluation
budget and recorded as a violation with its reason (the turn still answers, fast)."""

from __future__ import annotations

import pytest

from tests.api.harness import Api, error_of, paths_of
from tests.security.hostile import (
    a_hard_constraint,
    a_hostile_bundle,
    publish,
    turn,
    turn_records,
    violation_messages,
)

CEILING_S = 10.0  # generous: the bombs below took 100 s, 2 GB or a 500 before they were refused


@pytest.mark.parametrize(("expression", "reason"), [
    ("4000000 ** 4000000 > 0", "integer over 256 bits"),
    ("[[0]*4000]*4000 == 0", "sequence repetition"),
    ("turn_number == 1 or 4000000 ** 4000000 > 0", "integer over 256 bits"),  # passes a turn-1 dry run
    ("len(f'{reply:>2000000000}') > 0", "f-string is not allowed"),
    ("not " * 100_000 + "True", "longer than 2,000 characters"),
    ("not " * 120 + "True", "nests deeper than 100 levels"),
    ("'%2000000000s' % reply != ''", "`%` takes numbers"),
    ("len(reply * 100000000) > 0", "sequence repetition"),
    ("1 << 100000 > 0", "lshift is not allowed"),
])
def test_a_bomb_in_a_hard_constraint_is_refused_at_publish_with_its_path(
        api: Api, expression: str, reason: str) -> None:
    _, key = api.new_tenant()
    response, elapsed = publish(api, key, a_hostile_bundle(rules=[a_hard_constraint(expression)]))
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_input")
    assert paths_of(response) == ["rules[0].expression"]
    assert reason in error_of(response)["details"]["errors"][0]["message"]
    assert elapsed < CEILING_S
    assert api.call("GET", "/v1/agents/hostile", key).status_code == 404  # nothing half-written


def test_a_bomb_in_a_tool_guard_or_a_transition_is_refused_with_its_path(api: Api) -> None:
    _, key = api.new_tenant()
    bundle = a_hostile_bundle(
        tools=[{"id": "wipe", "url": "https://example.com/wipe", "side_effect": "irreversible",
                "guard": "turn_number > 1 and 4000000 ** 4000000 > 0"}],
        scenarios=[{"id": "s", "condition": "a scenario", "entry_step": "a", "steps": [
            {"id": "a", "transitions": [{"to": "b", "expression": "[[0]*4000]*4000 == 0 or turn_number > 3"}]},
            {"id": "b", "terminal": True}]}])
    response, elapsed = publish(api, key, bundle)
    assert response.status_code == 422
    assert sorted(paths_of(response)) == ["scenarios[0].steps[0].transitions[0].expression", "tools[0].guard"]
    assert elapsed < CEILING_S


def test_an_expression_that_blows_its_budget_on_turn_data_is_a_violation_with_the_reason(api: Api) -> None:
    # GIVEN a constraint that is harmless at publish (it names a field) and explodes on the value
    # the user gives: a 12 ** 12000 integer, computed on every check of every draft
    _, key = api.new_tenant()
    bundle = a_hostile_bundle(
        fields=[{"name": "quantity", "type": "integer"}],
        rules=[a_hard_constraint("(quantity * 1000) ** (quantity * 1000) > 0")])
    assert publish(api, key, bundle)[0].status_code == 200
    # WHEN the user states the value
    answer, elapsed = turn(api, key, "quantity 12")
    # THEN the turn fails closed: no draft passes, the fallback is sent, and the record says why
    assert answer["outcome"]["fallback_used"] is True
    [record] = turn_records(api, key, answer["session_id"])
    messages = violation_messages(record)
    assert messages and all("exceeded its evaluation budget (an integer over 256 bits)" in text
                            for text in messages)
    assert elapsed < CEILING_S


def test_many_backtracking_matches_on_the_users_text_stop_at_the_turn_budget(api: Api) -> None:
    # GIVEN as many catastrophic searches as one expression may hold (each used to take its full
    # 50 ms timeout and then count as "no match", so the constraint passed)
    _, key = api.new_tenant()
    expression = "not (" + " or ".join(['matches(message, "(a+)+$")'] * 55) + ")"
    assert publish(api, key, a_hostile_bundle(rules=[a_hard_constraint(expression)]))[0].status_code == 200
    # WHEN the user sends the text that makes them backtrack
    answer, elapsed = turn(api, key, "a" * 5000 + "!")
    # THEN the check fails closed on the first timeout instead of passing after seconds
    assert answer["outcome"]["fallback_used"] is True
    [record] = turn_records(api, key, answer["session_id"])
    assert "exceeded its evaluation budget (a pattern ran out of time" in violation_messages(record)[0]
    assert elapsed < CEILING_S


def test_two_hundred_matches_in_one_expression_are_refused_at_publish(api: Api) -> None:
    _, key = api.new_tenant()
    expression = " or ".join(['matches(message, "(a+)+$")'] * 200)
    response, _ = publish(api, key, a_hostile_bundle(rules=[a_hard_constraint(expression)]))
    assert response.status_code == 422
    assert paths_of(response) == ["rules[0].expression"]
