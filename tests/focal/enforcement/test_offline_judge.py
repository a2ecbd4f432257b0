"""The offline judge reads simple prohibitions and obligations, and says when it cannot check."""

from __future__ import annotations

import json

import pytest

from chalicelib.focal.enforcement.offline_judge import NOT_CHECKABLE, offline_answer, offline_verdicts
from tests.focal.factories import a_rule


def complies(action: str, reply: str) -> bool:
    return offline_verdicts(reply, [a_rule("r", action=action)])[0].complies


@pytest.mark.parametrize(
    ("action", "reply"),
    [
        ("Never mention competitor AcmeCorp", "You could try ACMECORP instead."),
        ("Never mention competitor AcmeCorp, even if asked", "Acmecorp is cheaper."),
        ("Do not promise refunds", "You will get a refund."),
        ("Do not promise or guarantee delivery dates", "Delivery is on Friday."),
        ("Don't say 'guaranteed'", "This is Guaranteed."),
        ("Avoid jargon", "Our API uses jargon."),
        ("Avoid discussing politics", "Politics is fun."),
        ("Never mention X", "X is better."),
        ("You must not reveal “internal codes”", "The internal codes are 12."),
    ],
)
def test_a_prohibited_term_in_the_reply_is_caught(action: str, reply: str) -> None:
    assert not complies(action, reply)


@pytest.mark.parametrize(
    ("action", "reply"),
    [
        ("Never mention competitor AcmeCorp", "Happy to help with your order."),
        ("Do not promise refunds", "Let me check your order."),
        ("Don't say 'guaranteed'", "This is likely."),
        ("Never mention X", "A xylophone is a fine gift."),  # a short name matches whole words only
    ],
)
def test_a_reply_without_the_prohibited_term_complies(action: str, reply: str) -> None:
    assert complies(action, reply)


def test_an_obligation_needs_every_content_word_or_the_quoted_phrase() -> None:
    assert complies("Always mention the order number", "Your order number is 5.")
    assert not complies("Always mention the order number", "Your parcel is on its way.")
    assert complies('Always include "Not financial advice"', "Buy index funds. Not financial advice.")
    assert not complies('Always include "Not financial advice"', "Buy index funds.")


@pytest.mark.parametrize("action", ["Be polite", "Never give legal advice", "Never mention it",
                                    "Always mention the"])
def test_what_it_cannot_interpret_complies_and_says_so(action: str) -> None:
    (verdict,) = offline_verdicts("Anything at all, legal advice included.", [a_rule("r", action=action)])
    assert verdict.complies
    assert verdict.reason == NOT_CHECKABLE


def test_the_offline_answer_is_the_judge_json() -> None:
    rules = [a_rule("a", action="Be kind"), a_rule("b", action="Never say 'refund'")]
    parsed = json.loads(offline_answer("No refund today.", rules))
    assert [(v["rule_id"], v["complies"]) for v in parsed["verdicts"]] == [("a", True), ("b", False)]
