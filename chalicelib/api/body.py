"""Request bodies: JSON or YAML in, a validated pydantic model out, with the errors of API.md.

- over the size limit (RUCHE_MAX_BODY_BYTES, default 5 MiB, under Lambda's 6 MB payload) -> 413
- not JSON / YAML (or empty), nested deeper than 64 levels                              -> 400 invalid_json
- well-formed but invalid                -> 422 invalid_input, details.errors = every [{path, message}]
Validation messages never echo the input values (they may be PII or secrets).
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from pydantic import BaseModel

# parse_model and loc_path live in the domain (the gateway validates webhook bodies too); named here
# as the HTTP body API.
from chalicelib.domain.documents import MAX_DEPTH, check_depth, load_json, loc_path, parse_model
from chalicelib.domain.errors import InvalidJson, PayloadTooLarge

M = TypeVar("M", bound=BaseModel)

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
JSON_TYPES = frozenset({"application/json"})
# What PUT/POST routes accept; Chalice answers 415 (its own body) for anything else.
ACCEPTED_CONTENT_TYPES = ["application/json", "application/yaml", "application/x-yaml"]


@functools.cache
def _no_alias_loader() -> type[Any]:
    """SafeLoader without anchors/aliases: a "billion laughs" body cannot expand past the size limit.

    Built on first use: PyYAML loads with the first YAML body, not at cold start (import budget).
    """
    import yaml  # noqa: PLC0415

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, "YAML aliases are not accepted", event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def read_document(raw: bytes | str | None, content_type: str | None, limit_bytes: int) -> object:
    """The parsed body. Raises PayloadTooLarge, or InvalidJson when it is empty or malformed."""
    data = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(data) > limit_bytes:
        raise PayloadTooLarge(f"the body is larger than {limit_bytes} bytes", limit_bytes=limit_bytes)
    if not data.strip():
        raise InvalidJson("the request body is empty")
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media in YAML_TYPES:
        return _load_yaml(data)
    return _load_json(data)


def _load_json(data: bytes) -> object:
    return load_json(data)


def _load_yaml(data: bytes) -> object:
    import yaml  # noqa: PLC0415 - see _no_alias_loader

    try:
        document: object = yaml.load(data, Loader=_no_alias_loader())  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise InvalidJson(f"the body is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise InvalidJson(f"the body is not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise InvalidJson("the body is not valid UTF-8 YAML") from None
    except ValueError:  # an integer of more than 4,300 digits (CPython's int() limit), a bad date, ...
        raise InvalidJson("the body is not valid YAML: a value cannot be read") from None
    check_depth(document)
    return document

__all__ = ["ACCEPTED_CONTENT_TYPES", "YAML_TYPES", "loc_path", "parse_model", "read_document", "read_model"]


def read_model(model: type[M], raw: bytes | str | None, content_type: str | None, limit_bytes: int) -> M:
    """read_document then parse_model: the whole trust boundary of one request body."""
    return parse_model(model, read_document(raw, content_type, limit_bytes))
