"""The field resolver: what a step still needs, and where each known value came from."""

from __future__ import annotations

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.scenario import AnyOf
from chalicelib.focal.fields import expression_for, holds, is_known, missing_required, resolve_required
from tests.focal.factories import a_bundle, a_field, a_loaded, a_step, a_tool


def test_fields_known_nowhere_are_missing_in_declared_order() -> None:
    step = a_step(required=["order_id", "email", "zip"])

    resolution = resolve_required(step, interlocutor={"email": "a@b.co"}, session={}, extracted={})

    assert resolution.missing == ("order_id", "zip")
    assert resolution.satisfied is False
    assert resolution.sources == {"email": "interlocutor"}


def test_the_freshest_source_wins_turn_then_session_then_interlocutor() -> None:
    step = a_step(required=["a", "b", "c"])

    resolution = resolve_required(
        step, interlocutor={"a": 1, "b": 1, "c": 1}, session={"b": 2, "c": 2}, extracted={"c": 3}
    )

    assert resolution.satisfied is True
    assert resolution.missing == ()
    assert resolution.sources == {"a": "interlocutor", "b": "session", "c": "turn"}


def test_empty_strings_none_and_empty_lists_count_as_missing() -> None:
    step = a_step(required=["a", "b", "c", "d"])

    resolution = resolve_required(
        step, interlocutor={"a": "  "}, session={"b": None}, extracted={"c": [], "d": 0}
    )

    assert resolution.missing == ("a", "b", "c")
    assert resolution.sources == {"d": "turn"}
    assert is_known(False) and is_known(0) and not is_known("")


def test_an_any_of_item_is_satisfied_by_any_one_complete_group() -> None:
    step = a_step(required=[AnyOf(any_of=[["email"], ["name", "zip"]])])  # type: ignore[list-item]

    by_second_group = resolve_required(
        step, interlocutor={}, session={"name": "Ada"}, extracted={"zip": "75001"}
    )

    assert by_second_group.satisfied is True
    assert by_second_group.sources == {"name": "session", "zip": "turn"}


def test_an_unsatisfied_any_of_reports_the_first_groups_missing_names() -> None:
    any_of = AnyOf(any_of=[["email", "phone"], ["name", "zip"]])
    step = a_step(required=["order_id", any_of])  # type: ignore[list-item]

    resolution = resolve_required(
        step, interlocutor={"phone": "+33600000000", "name": "Ada"}, session={}, extracted={"order_id": "A1"}
    )

    assert resolution.missing == ("email",)
    assert resolution.satisfied is False


def test_missing_required_resolves_against_one_mapping_of_known_values() -> None:
    step = a_step(required=["order_id", "email"])

    assert missing_required(step, {"email": "a@b.co"}) == ("order_id",)


def test_a_guard_naming_a_missing_or_blank_value_does_not_hold() -> None:
    agent = a_loaded(a_bundle(fields=[a_field("status")]))

    assert holds(agent, 'status == "pending"', {"status": "pending"}) is True
    assert holds(agent, 'status == "pending"', {"status": "shipped"}) is False
    assert holds(agent, 'status == "pending"', {}) is False
    assert holds(agent, 'status != "x"', {"status": ""}) is False


def test_expressions_compile_once_per_version_and_a_bad_one_never_holds() -> None:
    def with_guard() -> AgentBundle:  # the guard is part of the bundle, so loading compiles it
        return a_bundle(fields=[a_field("status")], tools=[a_tool(guard='status == "pending"')])

    agent = a_loaded(with_guard())

    first = expression_for(agent, 'status == "pending"')
    assert first is expression_for(agent, 'status == "pending"')
    assert expression_for(agent, "unknown_name == 1") is None
    assert holds(agent, "unknown_name == 1", {"unknown_name": 1}) is False
    assert expression_for(a_loaded(with_guard()), 'status == "pending"') is not first
