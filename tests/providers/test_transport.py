"""The pooled transport against real local servers: keep-alive reuse, the guard, caps, threads.

Every test counts what the server side saw (connections accepted, requests received): the client's
view alone could not tell a reused connection from a new one.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.providers import transport
from chalicelib.providers.network import BlockedDestination
from chalicelib.providers.transport import (
    MAX_BODY_BYTES,
    HttpRequest,
    PooledTransport,
    RefusedPeer,
    guarded_send,
    post_json,
)
from tests.support.chat_server import ChatServer
from tests.support.tls import self_signed

PUBLIC = "93.184.216.34"  # what the guard's own lookup is told a name resolves to


@pytest.fixture
def pool() -> Iterator[PooledTransport]:
    """A transport of its own (allow_private: the servers are on loopback), closed after the test."""
    pooled = PooledTransport(allow_private=True)
    yield pooled
    pooled.close()


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatServer]:
    """An HTTPS ChatServer whose self-signed certificate the client trusts through SSL_CERT_FILE."""
    certificate = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert_path))
    with ChatServer(tls=certificate.server_context()) as server:
        yield server


def call(send: transport.Send, url: str, payload: dict[str, Any] | None = None) -> Any:
    answer = post_json(send, url, payload or {}, timeout_s=2.0)
    assert answer.status == 200, answer.body
    return answer.json()


def test_several_calls_to_one_host_share_one_connection(pool: PooledTransport, chat_server: ChatServer) -> None:
    for index in range(5):
        chat_server.answer({"n": index})
    answers = [call(pool, f"{chat_server.url}/tools/t") for _ in range(5)]
    assert answers == [{"n": index} for index in range(5)]
    assert chat_server.connections == 1


def test_https_calls_share_one_tls_connection(pool: PooledTransport, tls_server: ChatServer) -> None:
    for _ in range(4):
        tls_server.reply("We open at 9.")
    for _ in range(4):
        assert call(pool, f"{tls_server.base_url}/chat/completions")["choices"][0]["message"]["content"] == (
            "We open at 9.")
    assert tls_server.connections == 1


def test_an_untrusted_certificate_is_a_connection_error(pool: PooledTransport, tmp_path: Path) -> None:
    with ChatServer(tls=self_signed(tmp_path).server_context()) as server:  # SSL_CERT_FILE not set
        with pytest.raises(ConnectionError, match="SSL"):
            post_json(pool, f"{server.url}/t", {}, timeout_s=2.0)
        assert server.requests == []


def test_a_connection_is_never_shared_between_hosts(pool: PooledTransport) -> None:
    with ChatServer() as first, ChatServer() as second:
        for server in (first, second, first, second):
            server.answer({"port": server.port})
            assert call(pool, f"{server.url}/t") == {"port": server.port}
        assert (first.connections, second.connections) == (1, 1)
        assert (len(first.requests), len(second.requests)) == (2, 2)


def test_the_process_has_one_transport_per_guard_mode() -> None:
    assert guarded_send(allow_private=False) is guarded_send(allow_private=False)
    assert guarded_send(allow_private=True) is guarded_send(allow_private=True)
    assert guarded_send(allow_private=False) is not guarded_send(allow_private=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_guard_refuses_loopback_and_names_that_resolve_to_it(chat_server: ChatServer, host: str) -> None:
    strict = PooledTransport(allow_private=False)
    chat_server.answer({"ok": True})
    with pytest.raises(BlockedDestination, match="loopback"):
        strict(HttpRequest("POST", f"http://{host}:{chat_server.port}/t", {}, b"{}", 2.0))
    assert (chat_server.connections, chat_server.requests) == (0, [])


@pytest.fixture
def rebind(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """rebind.example.com: the guard's lookup (with proto=) sees `checked`, connections reach 127.0.0.1."""
    seen = {"checked": PUBLIC}
    real = socket.getaddrinfo

    def resolving(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example.com":
            return real(host, port, *args, **kwargs)
        address = seen["checked"] if "proto" in kwargs else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolving)
    return seen


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_peer_on_loopback_after_a_public_lookup_receives_no_byte(rebind: dict[str, str], scheme: str) -> None:
    # GIVEN a listener on loopback that records whatever it is sent (a TLS ClientHello counts)
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def record() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(1.0)
            try:
                received.append(connection.recv(4096))
            except TimeoutError:
                received.append(b"(nothing within 1 s)")

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    port = listener.getsockname()[1]
    # WHEN the strict transport is sent there through a name the guard saw as public
    with pytest.raises(RefusedPeer, match="private network"):
        PooledTransport(allow_private=False)(
            HttpRequest("POST", f"{scheme}://rebind.example.com:{port}/t", {}, b"{}", 2.0))
    recorder.join(timeout=5)
    listener.close()
    # THEN the connection was closed before a byte (request line or ClientHello) went out
    assert received == [b""]


def test_a_pooled_connection_is_not_reused_once_the_guard_refuses_its_host(
        rebind: dict[str, str], chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a strict transport holding a kept-alive connection to a host that was public when it connected
    monkeypatch.setattr(transport, "is_public", lambda address: True)
    strict = PooledTransport(allow_private=False)
    url = f"http://rebind.example.com:{chat_server.port}/t"
    chat_server.answer({"first": True})
    chat_server.answer({"second": True})
    assert call(strict, url) == {"first": True}
    # WHEN the name now resolves to loopback
    rebind["checked"] = "127.0.0.1"
    # THEN the next request is refused before the pooled connection is taken
    with pytest.raises(BlockedDestination, match="loopback"):
        strict(HttpRequest("POST", url, {}, b"{}", 2.0))
    assert (chat_server.connections, len(chat_server.requests)) == (1, 1)
    strict.close()


def test_a_connection_made_with_allow_private_never_serves_the_strict_transport(
        rebind: dict[str, str], chat_server: ChatServer) -> None:
    chat_server.answer({"lenient": True})
    url = f"http://rebind.example.com:{chat_server.port}/t"
    assert call(guarded_send(allow_private=True), url) == {"lenient": True}
    with pytest.raises(RefusedPeer):
        guarded_send(allow_private=False)(HttpRequest("POST", url, {}, b"{}", 2.0))
    assert len(chat_server.requests) == 1


def test_after_a_timeout_the_next_call_gets_its_own_answer(pool: PooledTransport, chat_server: ChatServer) -> None:
    chat_server.stall(1.0, text="too late")
    chat_server.answer({"fresh": True})
    with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
        post_json(pool, f"{chat_server.base_url}/chat/completions", {}, timeout_s=0.2)
    assert call(pool, f"{chat_server.url}/t") == {"fresh": True}
    assert chat_server.connections == 2  # the timed-out connection was dropped, not pooled


def test_after_an_oversized_answer_the_next_call_gets_its_own_answer(
        pool: PooledTransport, chat_server: ChatServer) -> None:
    chat_server.answer_raw(b"x" * (MAX_BODY_BYTES + 10), content_type="application/json")
    chat_server.answer({"small": True})
    with pytest.raises(ConnectionError, match="larger than"):
        post_json(pool, f"{chat_server.url}/t", {}, timeout_s=5.0)
    assert call(pool, f"{chat_server.url}/t") == {"small": True}
    assert chat_server.connections == 2


def test_a_redirect_is_returned_not_followed(pool: PooledTransport, chat_server: ChatServer) -> None:
    chat_server.answer_raw(b"", status=302, headers={"Location": f"{chat_server.url}/elsewhere"})
    answer = post_json(pool, f"{chat_server.url}/t", {}, timeout_s=2.0)
    assert (answer.status, answer.headers["Location"]) == (302, f"{chat_server.url}/elsewhere")
    assert [request.path for request in chat_server.requests] == ["/t"]


def test_a_server_that_closed_its_idle_connection_is_dialled_again(pool: PooledTransport) -> None:
    server = ChatServer().start()
    server.answer({"n": 1})
    assert call(pool, f"{server.url}/t") == {"n": 1}
    server._server.close_connections()  # what an idle timeout on the provider's side does
    server.answer({"n": 2})
    assert call(pool, f"{server.url}/t") == {"n": 2}
    assert server.connections == 2
    server.stop()


def test_threads_sharing_the_transport_each_get_their_own_answer(
        pool: PooledTransport, chat_server: ChatServer) -> None:
    # /embeddings answers a vector derived from each input, so a crossed answer would show
    url = f"{chat_server.base_url}/embeddings"
    texts = [f"thread {thread} call {index}" for thread in range(8) for index in range(5)]
    expected = {text: call(pool, url, {"input": [text], "dimensions": 4})["data"][0]["embedding"]
                for text in texts}
    got: dict[str, Any] = {}
    failures: list[BaseException] = []

    def worker(thread: int) -> None:
        try:
            for index in range(5):
                text = f"thread {thread} call {index}"
                got[text] = call(pool, url, {"input": [text], "dimensions": 4})["data"][0]["embedding"]
        except BaseException as exc:  # reported below: a thread's exception would otherwise be lost
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert got == expected
    assert chat_server.connections <= 8  # at most one per thread, never one per call
