"""A real HTTP server speaking the OpenAI chat-completions protocol, scripted by tests.

    server = ChatServer().start()          # 127.0.0.1, a free port, a daemon thread
    server.reply("We open at 9.")          # canned answers are consumed in order
    server.fail(500)                       # an HTTP error
    server.stall(2.0)                      # answers after 2 s (longer than the client timeout)
    server.push(Canned(text="hi", on_receipt=work))  # runs work() before answering (the client waits)
    ... OpenAICompatLlm(endpoint=Endpoint(base_url=server.base_url, allow_private=True)) ...
    server.requests[0].body["messages"]    # every request received, parsed
    server.connections                     # TCP connections accepted (keep-alive: one serves many)
    server.stop()                          # also closes the kept-alive connections

ChatServer(tls=context) serves HTTPS with that server context (tests/support/tls.py makes one).

POST {base_url}/chat/completions answers the next canned item as a chat completion; with nothing
queued it answers 400 "no canned answer" (never retried, so a missing script fails fast).
POST {base_url}/embeddings answers queued `vectors(...)`, or deterministic vectors when nothing is
queued. Any other POST path answers the next canned item verbatim (`answer`, `answer_raw`): that
is how tool servers are scripted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Canned:
    """One scripted answer. Which fields are set decides how it is rendered."""

    status: int = 200
    text: str | None = None  # a chat completion's content
    json_body: Any = None  # sent as is (any path)
    raw_body: bytes | None = None  # sent as is (any path)
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: Mapping[str, int] | None = None
    vectors: list[list[float]] | None = None
    # Run in the server's thread before the answer goes out, while the client waits for it: how a
    # test makes something happen in the middle of a caller's request.
    on_receipt: Callable[[], None] | None = None


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it is not JSON


class _Listener(ThreadingHTTPServer):
    """Keeps every accepted connection, to count them and to close them when the server stops: a
    client's pooled keep-alive connection must not outlive the server it was made to."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._tls = tls
        self._accepted_lock = threading.Lock()
        self.accepted: list[socket.socket] = []

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self._tls is not None:  # the handshake runs in the handler's thread, not the accepting one
            connection = self._tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        with self._accepted_lock:
            self.accepted.append(connection)
        return connection, address

    def close_connections(self) -> None:
        with self._accepted_lock:
            for connection in self.accepted:
                with contextlib.suppress(OSError):  # already closed by the client
                    connection.shutdown(socket.SHUT_RDWR)


class ChatServer:
    """A scriptable OpenAI-compatible server. Thread-safe; start() returns self."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._queue: deque[Canned] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Received] = []
        self._scheme = "https" if tls is not None else "http"
        self._server = _Listener(_handler_for(self), tls)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="chat-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (over HTTPS, each one is a TLS handshake)."""
        with self._server._accepted_lock:
            return len(self._server.accepted)

    @property
    def base_url(self) -> str:
        """What an OpenAI client is configured with."""
        return f"{self.url}/v1"

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases stalled handlers at once
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        self._server.close_connections()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------
    def push(self, canned: Canned) -> None:
        with self._lock:
            self._queue.append(canned)

    def reply(self, text: str, *, prompt_tokens: int | None = None,
              completion_tokens: int | None = None) -> None:
        """A chat completion with this content (usage reported only when token counts are given)."""
        usage = None
        if prompt_tokens is not None or completion_tokens is not None:
            usage = {"prompt_tokens": prompt_tokens or 0, "completion_tokens": completion_tokens or 0,
                     "total_tokens": (prompt_tokens or 0) + (completion_tokens or 0)}
        self.push(Canned(text=text, usage=usage))

    def reply_json(self, document: Any, **usage: int) -> None:
        """A chat completion whose content is this document as JSON (structured tasks)."""
        self.reply(json.dumps(document), **usage)

    def fail(self, status: int = 500, message: str = "scripted failure") -> None:
        self.push(Canned(status=status, json_body={"error": {"message": message, "type": "server_error"}}))

    def stall(self, delay_s: float, text: str = "too late") -> None:
        """Answer only after delay_s (or when the server stops)."""
        self.push(Canned(text=text, delay_s=delay_s))

    def answer(self, document: Any, status: int = 200) -> None:
        """Any path: this JSON document, verbatim (tool servers)."""
        self.push(Canned(status=status, json_body=document))

    def answer_raw(self, body: bytes, status: int = 200, content_type: str = "text/plain",
                   headers: Mapping[str, str] | None = None) -> None:
        self.push(Canned(status=status, raw_body=body, content_type=content_type, headers=headers or {}))

    def vectors(self, vectors: list[list[float]]) -> None:
        """The next /embeddings answer."""
        self.push(Canned(vectors=vectors))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def bodies(self) -> list[Any]:
        return [received.body for received in self.requests]

    # -- serving -----------------------------------------------------------------------------
    def _next(self, received: Received) -> Canned | None:
        with self._lock:
            self.requests.append(received)
            return self._queue.popleft() if self._queue else None

    def _render(self, path: str, body: Any,
                canned: Canned | None) -> tuple[int, bytes, str, Mapping[str, str]]:
        if canned is not None and canned.on_receipt is not None:
            canned.on_receipt()
        if canned is not None and canned.delay_s:
            self._stopping.wait(canned.delay_s)
        if canned is not None and canned.raw_body is not None:
            return canned.status, canned.raw_body, canned.content_type, canned.headers
        if canned is not None and canned.json_body is not None:
            return canned.status, _json(canned.json_body), "application/json", canned.headers
        if path.endswith("/embeddings"):
            return 200, _json(_embeddings(body, canned)), "application/json", {}
        if path.endswith("/chat/completions") and canned is not None and canned.text is not None:
            return canned.status, _json(_completion(body, canned)), "application/json", {}
        if canned is None:
            error = {"error": {"message": "chat_server: no canned answer left", "type": "test_script"}}
        else:
            error = {"error": {"message": f"chat_server: canned {canned} does not fit {path}",
                               "type": "test_script"}}
        return 400, _json(error), "application/json", {}


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.do_handshake()
            super().setup()

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            headers = {name.lower(): value for name, value in self.headers.items()}
            canned = server._next(Received("POST", self.path, headers, body))
            status, payload, content_type, extra = server._render(self.path, body, canned)
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a stalled answer after its timeout): expected

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output quiet

    return Handler


def _json(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")


def _completion(request: Any, canned: Canned) -> dict[str, Any]:
    model = request.get("model", "scripted") if isinstance(request, dict) else "scripted"
    answer: dict[str, Any] = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": canned.text}}],
    }
    if canned.usage is not None:
        answer["usage"] = dict(canned.usage)
    return answer


def _embeddings(request: Any, canned: Canned | None) -> dict[str, Any]:
    texts = request.get("input", []) if isinstance(request, dict) else []
    texts = [texts] if isinstance(texts, str) else texts
    dimensions = int(request.get("dimensions", 8)) if isinstance(request, dict) else 8
    vectors = canned.vectors if canned is not None and canned.vectors is not None else [
        _deterministic_vector(str(text), dimensions) for text in texts
    ]
    return {"object": "list", "model": "scripted",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}


def _deterministic_vector(text: str, dimensions: int) -> list[float]:
    seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")
    vector = np.random.default_rng(seed).standard_normal(dimensions)
    return [float(value) for value in vector / np.linalg.norm(vector)]
