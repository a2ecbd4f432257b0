"""Offline extraction: values by field type, whole tokens only, one field per span, asked and cued first."""

from __future__ import annotations

from datetime import date
from typing import Any

from chalicelib.domain.interlocutor import FieldDefinition
from chalicelib.focal.extract import extract_values, is_whole_token
from tests.focal.factories import a_field

ZIP = a_field("zip_code", pattern=r"^\d{5}$")
SHIPPING_ZIP = a_field("shipping_zip", pattern=r"^\d{5}$")
ORDER_ID = a_field("order_id", pattern=r"^#W\d{7}$")
FRIDAY = date(2026, 12, 4)  # a Friday


def extract(message: str, *fields: FieldDefinition, asked: tuple[str, ...] = (), known: tuple[str, ...] = (),
            today: date | None = None) -> dict[str, Any]:
    return extract_values(message, list(fields), asked=asked, known=known, today=today)


def test_a_pattern_never_takes_digits_inside_another_token() -> None:
    # zip_code is declared first and its digits sit inside the order id: the order id still wins.
    assert extract("return order #W1234567 please", ZIP, ORDER_ID) == {"order_id": "#W1234567"}
    assert extract("order #W1234567, zip 94107", ZIP, ORDER_ID) == {"order_id": "#W1234567", "zip_code": "94107"}


def test_a_number_is_never_read_out_of_an_order_number() -> None:
    quantity = a_field("quantity", "integer")
    assert extract("order NW-204513", quantity) == {}
    assert extract("order NW-204513, 2 of them", quantity) == {"quantity": "2"}


def test_the_field_the_agent_asked_for_wins_a_value_two_fields_could_take() -> None:
    assert extract("94107", ZIP, SHIPPING_ZIP) == {"zip_code": "94107"}  # nothing says which: declared order
    assert extract("94107", ZIP, SHIPPING_ZIP, asked=("shipping_zip",)) == {"shipping_zip": "94107"}


def test_cue_words_near_a_value_say_which_field_it_belongs_to() -> None:
    assert extract("please ship it to 94107", ZIP, SHIPPING_ZIP) == {"shipping_zip": "94107"}
    assert extract("the shipping zip is 94107", ZIP, SHIPPING_ZIP) == {"shipping_zip": "94107"}
    assert extract("my zip is 12345 and ship to 94107", ZIP, SHIPPING_ZIP) == {
        "zip_code": "12345", "shipping_zip": "94107"}


def test_a_field_that_already_has_a_value_yields_an_uncued_value_to_one_that_has_none() -> None:
    assert extract("94107", ZIP, SHIPPING_ZIP, known=("zip_code",)) == {"shipping_zip": "94107"}


def test_a_span_belongs_to_one_field_only() -> None:
    found = extract("it is 94107", ZIP, SHIPPING_ZIP, a_field("postcode", pattern=r"\d{5}"))
    assert list(found.values()) == ["94107"]


def test_enum_values_are_read_from_their_synonyms() -> None:
    reason = a_field("reason", "enum", values=["damaged", "wrong size"],
                     synonyms={"damaged": ["broken", "cracked"], "wrong size": ["too small", "too big"]})
    assert extract("it came broken", reason) == {"reason": "damaged"}
    assert extract("the shoes are TOO SMALL", reason) == {"reason": "wrong size"}
    assert extract("it is unbreakable", reason) == {}


def test_money_is_read_as_a_number_and_plain_numbers_need_a_cue_when_several_fields_are_numeric() -> None:
    budget = a_field("budget", "number")
    assert extract("I can spend $1,250.50 at most", budget) == {"budget": "1250.50"}
    assert extract("about 30 dollars", budget) == {"budget": "30"}
    guests = a_field("guests", "integer")
    assert extract("4 of us, about 30", budget, guests) == {}
    assert extract("4 guests, budget 300", budget, guests) == {"guests": "4", "budget": "300"}


def test_dates_are_read_in_iso_and_calendar_words_against_today() -> None:
    day = a_field("day", "date")
    assert extract("on 2026-12-18", day) == {"day": "2026-12-18"}
    assert extract("tomorrow works", day, today=FRIDAY) == {"day": "2026-12-05"}
    assert extract("next Tuesday", day, today=FRIDAY) == {"day": "2026-12-08"}
    assert extract("Friday", day, today=FRIDAY) == {"day": "2026-12-11"}  # said on a Friday: the next one
    assert extract("the 3rd of March", day, today=FRIDAY) == {"day": "2027-03-03"}
    assert extract("December 21, 2026", day, today=FRIDAY) == {"day": "2026-12-21"}
    assert extract("tomorrow", day) == {}  # without today, a relative date is not guessed


def test_a_short_answer_to_an_asked_free_text_field_is_its_value() -> None:
    name = a_field("name")
    assert extract("It's Ana Lopez", name, asked=("name",)) == {"name": "Ana Lopez"}
    assert extract("It's Ana Lopez", name) == {}
    assert extract("I would rather talk about something else entirely today", name, asked=("name",)) == {}


def test_fields_users_may_not_set_are_never_extracted() -> None:
    status = a_field("order_status", "enum", values=["delivered"], sources=["tool"])
    assert extract("it was delivered", status) == {}


def test_whole_tokens() -> None:
    text = "#W1234567 and 12345."
    assert not is_whole_token(text, 2, 7)
    assert is_whole_token(text, 0, 9)
    assert is_whole_token(text, 14, 19)
