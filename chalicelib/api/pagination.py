"""Lists: `?limit=` (1..200, default 50) and an opaque `?cursor=` answered as `next_cursor`."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from chalicelib.domain.errors import InvalidInput

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None


def page_request(query: Mapping[str, str] | None) -> PageRequest:
    """The page asked for. Raises InvalidInput (path `limit`) for a limit that is not 1..200."""
    query = query or {}
    raw = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise InvalidInput.at("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
        limit = int(raw)
    return PageRequest(limit=limit, cursor=query.get("cursor") or None)


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The offset a cursor of encode_cursor names. Raises InvalidInput (path `cursor`) otherwise."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = decoded["o"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise InvalidInput.at("cursor", "is not a cursor this API issued") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInput.at("cursor", "is not a cursor this API issued")
    return offset


def paginate(items: Sequence[T], page: PageRequest) -> tuple[list[T], str | None]:
    """One page of an in-memory list (already ordered) and the cursor of the next, or None."""
    start = decode_cursor(page.cursor) if page.cursor else 0
    end = start + page.limit
    return list(items[start:end]), (encode_cursor(end) if end < len(items) else None)
