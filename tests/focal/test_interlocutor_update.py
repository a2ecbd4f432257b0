"""Interlocutor data update: validate stated values, persist or keep in session, reject with a reason."""

from __future__ import annotations

from chalicelib.domain.interlocutor import FieldChange, FieldScope, ValueSource
from chalicelib.focal.interlocutor_update import Origin, update_interlocutor_data
from tests.focal.factories import a_field, an_interlocutor

FIELDS = [
    a_field("email", "email", pii=True, ttl_days=30),
    a_field("age", "integer", minimum=0, maximum=130),
    a_field("topic", scope=FieldScope.SESSION),
    a_field("score", "number", sources=[ValueSource.TOOL]),
]


def test_a_valid_persistent_value_becomes_a_change_with_the_fields_ttl() -> None:
    update = update_interlocutor_data(
        {"email": " Jane@Example.com ", "age": "42"}, FIELDS, an_interlocutor(), {}, Origin(confidence=0.8)
    )
    assert update.changes == (
        FieldChange(
            name="email", value="Jane@Example.com", source=ValueSource.USER, confidence=0.8, ttl_days=30
        ),
        FieldChange(name="age", value=42, source=ValueSource.USER, confidence=0.8, ttl_days=None),
    )
    assert update.accepted == ("email", "age")
    assert update.known == {"email": "Jane@Example.com", "age": 42}
    assert update.rejected == {}


def test_a_session_scoped_value_stays_in_the_session_and_is_never_persisted() -> None:
    update = update_interlocutor_data({"topic": "returns"}, FIELDS, an_interlocutor(), {"other": 1})
    assert update.changes == ()
    assert update.session_values == {"other": 1, "topic": "returns"}
    assert update.accepted == ("topic",)
    assert update.known["topic"] == "returns"


def test_an_unchanged_value_is_not_rewritten() -> None:
    update = update_interlocutor_data(
        {"age": 42, "topic": "returns"}, FIELDS, an_interlocutor({"age": 42}), {"topic": "returns"}
    )
    assert update.changes == ()
    assert update.accepted == ()
    assert update.known == {"age": 42, "topic": "returns"}


def test_invalid_values_are_rejected_with_a_reason_that_never_repeats_the_value() -> None:
    update = update_interlocutor_data(
        {"email": "not-an-address", "age": "300"}, FIELDS, an_interlocutor(), {}
    )
    assert update.changes == ()
    assert update.rejected == {"email": "is not an email address", "age": "is above the maximum 130"}
    assert all("not-an-address" not in reason and "300" not in reason for reason in update.rejected.values())


def test_unknown_fields_and_refused_sources_are_reported_and_none_means_not_stated() -> None:
    update = update_interlocutor_data(
        {"shoe_size": 44, "score": 3, "age": None}, FIELDS, an_interlocutor(), {}
    )
    assert update.rejected == {"shoe_size": "unknown field", "score": "source user not accepted"}
    assert update.changes == ()
    tool = update_interlocutor_data({"score": "3.5"}, FIELDS, an_interlocutor(), {}, Origin(ValueSource.TOOL))
    assert [(change.name, change.value, change.source) for change in tool.changes] == [
        ("score", 3.5, ValueSource.TOOL)
    ]


def test_known_merges_stored_session_and_new_values_with_the_new_ones_winning() -> None:
    update = update_interlocutor_data(
        {"age": 43}, FIELDS, an_interlocutor({"age": 42, "email": "a@b.co"}), {"topic": "billing"}
    )
    assert update.known == {"age": 43, "email": "a@b.co", "topic": "billing"}
