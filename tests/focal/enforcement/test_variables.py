"""The names a constraint expression sees for a candidate reply."""

from __future__ import annotations

from chalicelib.domain.expressions import REPLY_NAMES, compile_expression
from chalicelib.focal.enforcement.variables import expression_variables


def test_every_name_of_the_contract_is_in_scope() -> None:
    variables = expression_variables(reply="Your refund is $40.", message="refund please", turn_number=3,
                                     known={"tier": "gold"}, tool_results={"crm": {"status": "ok"}})
    assert variables == {"reply": "Your refund is $40.", "message": "refund please", "turn_number": 3,
                         "tier": "gold", "tools": {"crm": {"status": "ok"}}}


def test_a_field_named_like_a_reply_figure_keeps_its_stored_value() -> None:
    # The reference system replaced a stored `amount` with the largest figure of the reply.
    variables = expression_variables(reply="That will be $80, 15% off.", message="", turn_number=1,
                                     known={"amount": 30, "discount_percent": 5}, tool_results={})
    assert variables["amount"] == 30
    assert variables["discount_percent"] == 5
    rule = compile_expression("amount <= 50 and max(amounts(reply)) == 80", REPLY_NAMES | {"amount"})
    assert rule.evaluate(variables).holds


def test_a_field_value_that_is_unknown_stays_missing() -> None:
    variables = expression_variables(reply="ok", message="", turn_number=1, known={"tier": None},
                                     tool_results={})
    verdict = compile_expression('tier == "gold"', REPLY_NAMES | {"tier"}).evaluate(variables)
    assert not verdict.applicable


def test_reply_always_means_the_candidate_reply_even_if_a_field_clashes() -> None:
    variables = expression_variables(reply="the real reply", message="hi", turn_number=2,
                                     known={"reply": "stale stored text", "turn_number": 99},
                                     tool_results={})
    assert variables["reply"] == "the real reply"
    assert variables["turn_number"] == 2


def test_tool_results_are_reachable_by_tool_id() -> None:
    variables = expression_variables(reply="", message="", turn_number=1, known={},
                                     tool_results={"lookup": {"status": "shipped"}})
    rule = compile_expression('tools["lookup"]["status"] == "shipped"', REPLY_NAMES)
    assert rule.evaluate(variables).holds
