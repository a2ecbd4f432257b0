"""Request bodies: JSON and YAML, the size limit, malformed input, validation errors with paths."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.body import loc_path, parse_model, read_document, read_model
from chalicelib.domain.errors import InvalidInput, InvalidJson, PayloadTooLarge

LIMIT = 1000


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    quantity: int = Field(ge=1)
    email: str
    items: list[int] = Field(default_factory=list)


@pytest.mark.parametrize(
    "content_type", ["application/yaml", "application/x-yaml", "application/yaml; charset=utf-8"]
)
def test_yaml_bodies_are_read_as_yaml(content_type: str) -> None:
    assert read_document(b"agent:\n  name: a\n", content_type, LIMIT) == {"agent": {"name": "a"}}


def test_json_is_the_default() -> None:
    assert read_document('{"a": [1, 2]}', None, LIMIT) == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b'{"a": ', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b'{"a": NaN}', "application/json"),
        (b"agent: [unclosed", "application/yaml"),
        (b"a: &x [1]\nb: *x\n", "application/yaml"),
        (b"   ", "application/json"),
        (None, "application/json"),
    ],
)
def test_malformed_or_empty_bodies_are_invalid_json(raw: bytes | None, content_type: str) -> None:
    with pytest.raises(InvalidJson):
        read_document(raw, content_type, LIMIT)


def test_a_body_over_the_limit_is_payload_too_large_before_it_is_parsed() -> None:
    with pytest.raises(PayloadTooLarge):
        read_document(b"{" + b" " * LIMIT + b"}", "application/json", LIMIT)


def test_every_validation_problem_is_reported_at_once_with_paths_and_never_the_values() -> None:
    with pytest.raises(InvalidInput) as caught:
        read_model(Order, b'{"quantity": "lots-of-secret", "items": [1, "x"], "extra": 1}', None, LIMIT)
    errors = caught.value.details["errors"]
    assert sorted(error["path"] for error in errors) == ["email", "extra", "items[1]", "quantity"]
    assert "lots-of-secret" not in str(caught.value.details)


def test_a_body_that_is_not_an_object_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_model(Order, [1, 2])


def test_loc_path_formats_nested_locations() -> None:
    assert loc_path(("rules", 3, "templates", 0)) == "rules[3].templates[0]"
    assert loc_path((0, "a")) == "[0].a"
