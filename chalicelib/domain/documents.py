"""Parsed documents from outside (request bodies, webhooks): JSON read safely, nesting bounded.

A body nested 100,000 levels deep makes the parsers raise RecursionError, and one nested a few
hundred levels parses but then overflows the recursive code that walks it (validation, config
merges, logging). Both are the sender's fault: 400 `invalid_json`, never a 500. No agent bundle,
config layer or provider webhook comes near MAX_DEPTH.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.domain.errors import InvalidInput, InvalidJson

MAX_DEPTH = 64
M = TypeVar("M", bound=BaseModel)


def load_json(data: bytes | str, what: str = "the body") -> object:
    """The JSON document in `data`. Raises InvalidJson when it is malformed, not UTF-8, or too deep."""
    try:
        document = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidJson(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError; so are huge ints
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidJson(f"{what} is not valid JSON{where}") from None
    check_depth(document, what)
    return document


def check_depth(document: object, what: str = "the body") -> None:
    """Raises InvalidJson when lists and objects nest deeper than MAX_DEPTH. Iterative: no recursion."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            raise InvalidJson(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_model(model: type[M], document: object) -> M:
    """Validate `document` as `model`. Raises InvalidInput listing every problem with its path."""
    if not isinstance(document, Mapping):
        raise InvalidInput.at("", "the body must be an object")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = [
            (loc_path(error["loc"]), error["msg"])
            for error in exc.errors(include_input=False, include_url=False)
        ]
        raise InvalidInput.many(problems) from None


def loc_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's ("rules", 3, "templates", 0) as "rules[3].templates[0]"."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
