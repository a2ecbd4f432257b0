"""A hostile tenant's regular expressions, played over HTTP: a pattern that would take seconds and
gigabytes to compile is refused at publish (before it compiles), the built-in extractors stay linear
on a user's 20,000-digit message, and tenant patterns cannot hold a turn past its regex budget."""

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

CEILING_S = 10.0  # generous; the cases below took 4.7 s + 2.5 GB to compile, or 25 s a turn, before
UNROLLS = "(?:(?:a{100}){100}){1000}"  # 26 characters, ten million items once unrolled


@pytest.mark.parametrize(("pattern", "reason"), [
    (UNROLLS, "repeats too much"),
    ("a{5000}b{5001}", "repeats too much"),
    ("[a-z]" * 300, "longer than 1000 characters"),
])
def test_a_field_pattern_that_unrolls_too_far_is_refused_before_it_compiles(
        api: Api, pattern: str, reason: str) -> None:
    _, key = api.new_tenant()
    bundle = a_hostile_bundle(fields=[{"name": "code", "type": "string"},
                                      {"name": "token", "type": "string", "pattern": pattern}])
    response, elapsed = publish(api, key, bundle)
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_input")
    assert paths_of(response) == ["fields[1]"]
    assert reason in error_of(response)["details"]["errors"][0]["message"]
    assert elapsed < 2.0  # compiling it took 4.7 s
    assert api.call("GET", "/v1/agents/hostile", key).status_code == 404


def test_a_pattern_literal_in_an_expression_is_checked_the_same_way(api: Api) -> None:
    _, key = api.new_tenant()
    rule = a_hard_constraint(f'not matches(reply, "{UNROLLS}")')
    response, elapsed = publish(api, key, a_hostile_bundle(rules=[rule]))
    assert response.status_code == 422
    assert paths_of(response) == ["rules[0].expression"]
    assert "repeats too much" in error_of(response)["details"]["errors"][0]["message"]
    assert elapsed < 2.0


def test_a_pattern_the_user_supplies_at_turn_time_is_checked_before_it_compiles(api: Api) -> None:
    # GIVEN a constraint that uses the user's own text as a pattern (publish cannot know it)
    _, key = api.new_tenant()
    assert publish(api, key, a_hostile_bundle(rules=[a_hard_constraint("not matches(reply, message)")]))[
        0].status_code == 200
    # WHEN the user sends a compile bomb
    answer, elapsed = turn(api, key, UNROLLS)
    # THEN it is never compiled, and the check fails closed with the reason
    [record] = turn_records(api, key, answer["session_id"])
    assert "exceeded its evaluation budget (a pattern that cannot be used)" in violation_messages(record)[0]
    assert elapsed < CEILING_S


def test_money_and_percent_extractors_are_linear_on_a_20000_digit_message(api: Api) -> None:
    _, key = api.new_tenant()
    expression = "max(amounts(message) + [0]) < 1000 and max(percents(message) + [0]) <= 100"
    assert publish(api, key, a_hostile_bundle(rules=[a_hard_constraint(expression)]))[0].status_code == 200
    answer, elapsed = turn(api, key, "1" * 20_000)  # 25 s a turn when each digit restarted the search
    assert answer["outcome"]["fallback_used"] is False  # bare digits are neither money nor a percent
    assert elapsed < CEILING_S


def test_backtracking_field_patterns_share_one_regex_budget_per_turn(api: Api) -> None:
    # GIVEN 200 fields whose pattern backtracks on a run of "a"s (each search may take 50 ms)
    _, key = api.new_tenant()
    fields = [{"name": f"code{index}", "type": "string", "pattern": "(a+)+b"} for index in range(200)]
    assert publish(api, key, a_hostile_bundle(fields=fields))[0].status_code == 200
    # WHEN the user sends that run: 200 fields x 2 searches x 50 ms was 20 s of regex in one turn
    answer, elapsed = turn(api, key, "a" * 3000)
    # THEN the turn answers within the ceiling and nothing was extracted
    interlocutor = api.call("GET", f"/v1/agents/hostile/interlocutors/{answer['interlocutor_id']}", key)
    assert interlocutor.status_code == 200
    assert interlocutor.json_body["fields"] == {}
    assert elapsed < CEILING_S
