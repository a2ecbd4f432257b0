"""Lists: ?limit= and next_cursor."""

from __future__ import annotations

import pytest

from chalicelib.api.pagination import decode_cursor, encode_cursor, page_request, paginate
from chalicelib.domain.errors import InvalidInput


def test_pages_follow_each_other_until_the_cursor_runs_out() -> None:
    items = list(range(5))
    first, cursor = paginate(items, page_request({"limit": "2"}))
    second, cursor2 = paginate(items, page_request({"limit": "2", "cursor": cursor or ""}))
    third, cursor3 = paginate(items, page_request({"limit": "2", "cursor": cursor2 or ""}))
    assert (first, second, third, cursor3) == ([0, 1], [2, 3], [4], None)


def test_the_default_page_holds_fifty() -> None:
    page, cursor = paginate(list(range(60)), page_request(None))
    assert len(page) == 50 and cursor is not None


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
def test_a_limit_outside_1_to_200_is_invalid(limit: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        page_request({"limit": limit})
    assert caught.value.details["errors"][0]["path"] == "limit"


@pytest.mark.parametrize("cursor", ["garbage!", encode_cursor(3)[:-2] + "zz", "eyJ4IjogMX0", "eyJvIjogLTF9"])
def test_a_cursor_this_api_did_not_issue_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor)


def test_a_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
