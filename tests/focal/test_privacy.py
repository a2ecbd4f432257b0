"""Privacy: the schema mask shows no value; texts and records never carry a PII value in clear."""

from __future__ import annotations

import json
import time

from chalicelib.focal.privacy import all_versions, mask_text, masked_values, schema_mask
from tests.focal.factories import a_field

EMAIL = a_field("email", "email", pii=True, description="where we write to")
PHONE = a_field("phone", "phone", pii=True)
NAMES = a_field("names", "list", pii=True)
PLAN = a_field("plan", "enum", values=["basic", "pro"])
CITY = a_field("city")
FIELDS = [EMAIL, PHONE, NAMES, PLAN, CITY]


def test_the_schema_mask_says_what_exists_but_holds_no_value() -> None:
    known = {"email": "jane.doe@example.com", "plan": "pro", "city": "Lyon", "names": []}
    mask = schema_mask(FIELDS, known)
    assert mask == [
        {"name": "email", "type": "email", "description": "where we write to", "has_value": True},
        {"name": "phone", "type": "phone", "has_value": False},
        {"name": "names", "type": "list", "has_value": False},
        {"name": "plan", "type": "enum", "values": ["basic", "pro"], "has_value": True},
        {"name": "city", "type": "string", "has_value": True},
    ]
    text = json.dumps(mask)
    assert "jane.doe@example.com" not in text
    assert "Lyon" not in text


def test_every_occurrence_of_an_email_is_masked_whatever_its_case() -> None:
    text = "Mail JANE.Doe@Example.com or jane.doe@example.com"
    masked = mask_text(text, [a_field("email", pii=True)], {"email": "jane.doe@example.com"})  # typed string
    assert masked == "Mail ‹email› or ‹email›"
    # A field typed email also masks any other address, by its shape.
    assert mask_text(text + ", not jane.doe@example.org.", FIELDS, {"email": "jane.doe@example.com"}) == (
        "Mail ‹email› or ‹email›, not ‹email›.")


def test_a_phone_number_is_masked_in_any_formatting_but_not_inside_a_longer_number() -> None:
    values = {"phone": "+33612345678"}
    text = "Call +33 6 12 34 56 78, or 33612345678, or +33-612-345-678; ref 9933612345678999 stays."
    masked = mask_text(text, FIELDS, values)
    assert masked == "Call ‹phone›, or ‹phone›, or ‹phone›; ref 9933612345678999 stays."


def test_each_item_of_a_list_value_is_masked() -> None:
    masked = mask_text("Bob and alice and Carol", FIELDS, {"names": ["Alice", "Bob"]})
    assert masked == "‹names› and ‹names› and Carol"


def test_non_pii_values_and_unset_fields_are_left_alone() -> None:
    text = "Plan pro in Lyon"
    assert mask_text(text, FIELDS, {"plan": "pro", "city": "Lyon", "email": None, "phone": ""}) == text
    assert mask_text("", FIELDS, {"email": "a@b.co"}) == ""


def test_a_short_value_is_masked_only_as_a_whole_word() -> None:
    initials = a_field("initials", pii=True)
    assert (
        mask_text("JD signed; JDX did not", [initials], {"initials": "jd"})
        == "‹initials› signed; JDX did not"
    )


def test_the_longest_value_wins_when_one_contains_another() -> None:
    first = a_field("first_name", pii=True)
    full = a_field("full_name", pii=True)
    masked = mask_text(
        "I am Jane Doe, Jane for short", [first, full], {"first_name": "Jane", "full_name": "Jane Doe"}
    )
    assert masked == "I am ‹full_name›, ‹first_name› for short"


def test_numbers_are_masked_in_their_written_forms() -> None:
    pin = a_field("pin", "number", pii=True)
    assert mask_text("pin 4242 or 4242.0", [pin], {"pin": 4242.0}) == "pin ‹pin› or ‹pin›"
    flag = a_field("vip", "boolean", pii=True)
    assert mask_text("yes True", [flag], {"vip": True}) == "yes True"


def test_masked_values_hide_pii_and_unknown_fields_and_show_the_rest_as_text() -> None:
    values = {
        "email": "jane@example.com",
        "names": ["A", "B"],
        "plan": "pro",
        "city": ["Lyon", "Paris"],
        "mystery": "secret",
        "age": 3,
    }
    shown = masked_values([*FIELDS, a_field("age", "integer")], values)
    assert shown == {
        "email": "‹email›",
        "names": "‹names›",
        "plan": "pro",
        "city": "Lyon, Paris",
        "mystery": "‹mystery›",
        "age": "3",
    }


def test_a_short_phone_value_is_masked_as_written_only() -> None:
    extension = a_field("extension", "phone", pii=True)
    assert mask_text("dial 12345 now, not 123456", [extension], {"extension": "12345"}) == (
        "dial ‹extension› now, not 123456"
    )


def test_masks_become_placeholders_the_engine_fills_after_generation() -> None:
    from chalicelib.focal.privacy import as_placeholders

    assert as_placeholders("write to ‹email› or call ‹phone›") == "write to {{ email }} or call {{ phone }}"
    assert as_placeholders("no masks ‹ here") == "no masks ‹ here"


def test_anything_shaped_like_an_email_or_a_phone_is_masked_when_a_pii_field_has_that_type() -> None:
    text = "write to Someone.Else@Example.org or ring (020) 7946-0958, not on 2026-12-05 for $1,250.00"
    assert mask_text(text, FIELDS, {}) == "write to ‹email› or ring ‹phone›, not on 2026-12-05 for $1,250.00"
    assert mask_text(text, [CITY], {}) == text  # no PII field of those types: nothing to hide


def test_every_version_of_a_value_is_masked() -> None:
    versions = all_versions({"names": ["Ada"]}, {"names": "Grace"}, {"names": ["Ada", "Alan"]})
    assert versions == {"names": ["Ada", "Grace", "Alan"]}
    assert mask_text("Ada, Grace and Alan", FIELDS, versions) == "‹names›, ‹names› and ‹names›"


def test_shape_masking_reads_a_long_word_once() -> None:
    started = time.perf_counter()
    mask_text("a" * 50_000 + " " + "7" * 50_000, FIELDS, {})
    assert time.perf_counter() - started < 5.0  # generous: quadratic scanning took minutes
