"""The constraint expression language: its helpers, publish-time checks and evaluation outcomes."""

from __future__ import annotations

import pytest

from chalicelib.domain.budget import turn_budget
from chalicelib.domain.expressions import (
    REPLY_NAMES,
    ExpressionError,
    amounts,
    compile_expression,
    contains,
    matches,
    numbers,
    percents,
    words,
)

NAMES = REPLY_NAMES | {"order_total", "tier"}


def test_numbers_reads_plain_and_grouped_figures_but_not_digits_inside_words() -> None:
    assert numbers("3 items, 1,200.50 each, -4 degrees, model v2") == [3.0, 1200.5, -4.0]


def test_numbers_of_a_text_without_figures_is_empty() -> None:
    assert numbers("no figures here") == []


def test_amounts_reads_currency_signs_and_words_before_or_after_the_figure() -> None:
    text = "$1,234.56, then 12 USD, €5, 7 euros and 9 dollars, but not the 10 items"
    assert amounts(text) == [1234.56, 12.0, 5.0, 7.0, 9.0]


def test_percents_reads_signs_and_words() -> None:
    assert percents("20% off, 5 percent more, 7 per cent less, 3 items") == [20.0, 5.0, 7.0]


def test_contains_ignores_case() -> None:
    assert contains("We GUARANTEE it", "guarantee")
    assert not contains("We promise it", "guarantee")


def test_matches_searches_anywhere_in_the_text() -> None:
    assert matches("your order 12345 ships", r"\d{5}")
    assert not matches("your order ships", r"\d{5}")


def test_words_counts_words_with_apostrophes_and_hyphens_as_one() -> None:
    assert words("Hello, it's a test-case.") == 4


def test_a_compiled_expression_holds_when_the_reply_complies() -> None:
    expression = compile_expression('max(amounts(reply) + [0]) <= 50 and not contains(reply, "guarantee")',
                                    NAMES)
    assert expression.evaluate({"reply": "A refund of $40 is possible."}).holds
    assert not expression.evaluate({"reply": "A refund of $80 is possible."}).holds
    assert not expression.evaluate({"reply": "We guarantee $10."}).holds


def test_names_exclude_functions_constants_and_tools() -> None:
    expression = compile_expression('len(reply) < 100 and tier != None and tools["crm"]["ok"] == True',
                                    NAMES)
    assert expression.names == frozenset({"reply", "tier"})


def test_lower_and_upper_leave_non_strings_alone() -> None:
    expression = compile_expression('lower(tier) == "gold" and upper(order_total) == 5', NAMES)
    assert expression.evaluate({"tier": "GOLD", "order_total": 5}).holds


def test_a_missing_value_makes_the_expression_not_applicable() -> None:
    verdict = compile_expression("order_total <= 50", NAMES).evaluate({"order_total": None})
    assert not verdict.applicable
    assert verdict.missing == ("order_total",)


def test_a_missing_tool_result_makes_the_expression_not_applicable() -> None:
    verdict = compile_expression('tools["lookup"]["status"] == "ok"', NAMES).evaluate({"tools": {}})
    assert not verdict.applicable


def test_a_type_error_in_tenant_data_is_an_applicable_error_not_a_crash() -> None:
    verdict = compile_expression("order_total < 5", NAMES).evaluate({"order_total": "five"})
    assert verdict.applicable
    assert not verdict.holds
    assert verdict.error.startswith("TypeError")


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("", "empty"),
        ("reply ==", "syntax error"),
        ("ordre_total > 5", "unknown name 'ordre_total'"),
        ("shout(reply)", "unknown function 'shout'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("reply.upper()", "unknown function 'reply.upper'"),
        ("reply.__class__", "attribute is not allowed"),
        ("lambda: 1", "lambda is not allowed"),
        ("[c for c in reply]", "listcomp is not allowed"),
    ],
)
def test_a_bad_expression_is_rejected_at_compile_time(source: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match=problem):
        compile_expression(source, NAMES)


@pytest.mark.parametrize(("source", "problem"), [
    ('matches(reply, "(")', "is not a valid regular expression"),
    ("9 ** 9 ** 9 > 1", "cannot be computed"),
    ("len(reply * 100000000) > 1", "fails on a sample reply"),
])
def test_expressions_that_would_fail_on_every_turn_are_refused_when_published(source: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match=problem):
        compile_expression(source, ["reply"])


def test_an_expression_over_fields_is_not_tried_before_the_fields_have_values() -> None:
    expression = compile_expression("order_total / items > 3", ["order_total", "items"])
    assert expression.evaluate({"order_total": 10, "items": 0}).error  # fails closed during a turn


@pytest.mark.timeout(60)  # with plain `re` this search would run for hours: the test would time out
def test_a_pattern_that_backtracks_forever_stops_and_fails_closed() -> None:
    evil = compile_expression('not matches(reply, "(a+)+b$")', ["reply"])
    verdict = evil.evaluate({"reply": "a" * 5000 + "!"})
    # A search that ran out of time proves nothing: the check fails, it does not pass by accident.
    assert (verdict.holds, verdict.applicable) == (False, True)
    assert verdict.overrun == "a pattern ran out of time (0.05 s)"


@pytest.mark.parametrize(("source", "holds"), [
    ("2 ** 255 > 0 and 7 % 3 == 1 and 7 // 2 == 3", True),
    ('reply[:4] == "Your" and reply[-1] == "."', True),
    ('("a" if turn_number == 1 else "b") == "a"', True),
    ("turn_number == 2 or len(reply) > 3", True),
    ('{"k": 1}["k"] == 1 and (1, 2) == (1, 2) and 2 in {1, 2}', True),
    ('"$5" + reply != reply', True),
])
def test_the_allowed_language_still_computes_what_it_did(source: str, holds: bool) -> None:
    verdict = compile_expression(source, REPLY_NAMES).evaluate(
        {"reply": "Your order.", "message": "hi", "turn_number": 1, "tools": {}})
    assert (verdict.holds, verdict.error) == (holds, "")


@pytest.mark.parametrize(("source", "overrun"), [
    ("order_total ** 300 > 0", "an integer over 256 bits"),
    ("order_total * 2 ** 255 > 0", "an integer over 256 bits"),
    ("len(tier + tier) > 0", "a text or list over 100,000 items"),
    ("len(tier * 2) > 0", "sequence repetition with `*` is not allowed"),
    ("1.5 ** order_total > 0", "an exponent over 10,000"),
])
def test_an_evaluation_past_a_limit_is_an_overrun_that_fails_closed(source: str, overrun: str) -> None:
    verdict = compile_expression(source, NAMES).evaluate({"order_total": 10**5, "tier": "x" * 60_000})
    assert (verdict.holds, verdict.applicable, verdict.overrun) == (False, True, overrun)


def test_a_turns_expression_budget_is_shared_by_every_evaluation() -> None:
    expression = compile_expression("order_total > 0", NAMES)
    with turn_budget(expressions_s=0.0):
        assert expression.evaluate({"order_total": 1}).overrun == "the turn's expression budget is spent"
    assert expression.evaluate({"order_total": 1}).holds
