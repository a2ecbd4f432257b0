"""Parsed documents from outside (request bodies, webhooks): JSON read safely, nesting bounded.

A body nested 100,000 levels deep makes the parsers raise RecursionError, and one nested a few
hundred levels parses but then overflows the recursive code that walks it (validation, config
merges, logging). Both are the sender's fault: 400 `invalid_json`, never a 500. No agent bundle,
config layer or provider webhook comes near MAX_DEPTH.
"""

from __future__ import annotations

import json

from chalicelib.domain.errors import InvalidJson

MAX_DEPTH = 64


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
