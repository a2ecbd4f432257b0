"""The HTTP tool client against a real local HTTP server."""

from __future__ import annotations

import pytest

from chalicelib.providers.tools_http import HttpToolClient, ToolCallFailed
from chalicelib.providers.transport import MAX_BODY_BYTES
from tests.support.chat_server import ChatServer


def a_client(**options: object) -> HttpToolClient:
    return HttpToolClient(allow_private=True, **options)  # type: ignore[arg-type]


def test_a_json_object_answer_is_returned_and_the_arguments_are_posted(chat_server: ChatServer) -> None:
    chat_server.answer({"order_id": "o-42", "status": "shipped"})

    result = a_client(headers={"X-Tool-Token": "t"}).call(
        f"{chat_server.url}/tools/order_status", {"order_id": "o-42"}, "turn-7:order_status", 2.0)

    assert result == {"order_id": "o-42", "status": "shipped"}
    sent = chat_server.requests[0]
    assert (sent.path, sent.body) == ("/tools/order_status", {"order_id": "o-42"})
    assert sent.headers["idempotency-key"] == "turn-7:order_status"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-tool-token"] == "t"


def test_a_non_json_answer_is_a_tool_failure(chat_server: ChatServer) -> None:
    chat_server.answer_raw(b"<html>oops</html>", content_type="text/html")
    with pytest.raises(ToolCallFailed, match="not JSON") as raised:
        a_client().call(f"{chat_server.url}/t", {}, "k", 2.0)
    assert raised.value.reason == "not_json"


def test_a_json_answer_that_is_not_an_object_is_a_tool_failure(chat_server: ChatServer) -> None:
    chat_server.answer([1, 2, 3])
    with pytest.raises(ToolCallFailed, match="JSON list, not an object"):
        a_client().call(f"{chat_server.url}/t", {}, "k", 2.0)


def test_a_500_is_a_tool_failure_and_is_not_retried(chat_server: ChatServer) -> None:
    chat_server.fail(500)
    chat_server.answer({"ok": True})
    with pytest.raises(ToolCallFailed, match="HTTP 500") as raised:
        a_client().call(f"{chat_server.url}/t", {}, "k", 2.0)
    assert raised.value.status == 500
    assert len(chat_server.requests) == 1


def test_no_answer_within_the_timeout_raises_timeout_error(chat_server: ChatServer) -> None:
    chat_server.stall(5.0)
    with pytest.raises(TimeoutError):
        a_client().call(f"{chat_server.url}/t", {}, "k", 0.3)


def test_a_redirect_is_not_followed(chat_server: ChatServer) -> None:
    chat_server.answer_raw(b"", status=307, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(ToolCallFailed, match="HTTP 307"):
        a_client().call(f"{chat_server.url}/t", {}, "k", 2.0)
    assert len(chat_server.requests) == 1


def test_an_unreachable_tool_is_a_tool_failure() -> None:
    server = ChatServer()
    url = f"{server.url}/t"
    server.stop()
    with pytest.raises(ToolCallFailed, match="unreachable"):
        a_client().call(url, {}, "k", 2.0)


def test_a_private_tool_url_is_refused_without_allow_private(chat_server: ChatServer) -> None:
    chat_server.answer({"ok": True})
    with pytest.raises(ToolCallFailed, match="loopback") as raised:
        HttpToolClient().call(f"{chat_server.url}/t", {}, "k", 2.0)
    assert raised.value.reason == "blocked_destination"
    assert chat_server.requests == []


def test_an_oversized_answer_is_a_tool_failure(chat_server: ChatServer) -> None:
    chat_server.answer_raw(b"{" + b" " * MAX_BODY_BYTES + b"}", content_type="application/json")
    with pytest.raises(ToolCallFailed, match="larger than"):
        a_client().call(f"{chat_server.url}/t", {}, "k", 5.0)
