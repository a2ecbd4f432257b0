"""New TLS handshakes per warm turn, and the latency of a pooled call against a fresh connection.

    .venv/bin/python bench/http_handshakes.py [--turns 10] [--calls 50]

A local HTTPS stand-in for an OpenAI-compatible provider (a self-signed certificate made at run
time in a temporary folder, a real server on a free port in a thread) counts the connections it
accepts: each one is a TLS handshake. Turns run through the turn gateway (runtime/gateway.py, over
the in-memory stores) with the LLM built the way runtime/services.llm_for builds it, anew for every
turn, so only the process's pool can carry a connection from one turn to the next. The certificate is
trusted through SSL_CERT_FILE (OpenSSL's own variable) and loopback through network.allow_private,
both for this bench only.
Target (DESIGN.md §7): 0 new TLS handshakes per warm turn.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from retrieval import MESSAGES, synthetic_bundle  # noqa: E402

from chalicelib.domain.bundle import PublishedBundle  # noqa: E402
from chalicelib.domain.config import Config  # noqa: E402
from chalicelib.domain.session import SessionKey  # noqa: E402
from chalicelib.focal.index import embed_bundle  # noqa: E402
from chalicelib.focal.tools import http_tool_runner  # noqa: E402
from chalicelib.providers.embeddings import OfflineEmbedder  # noqa: E402
from chalicelib.providers.factory import build_llm  # noqa: E402
from chalicelib.providers.llm import LlmProvider  # noqa: E402
from chalicelib.providers.offline import OfflineLlm  # noqa: E402
from chalicelib.providers.tools_http import HttpToolClient  # noqa: E402
from chalicelib.providers.transport import PooledTransport, guarded_send, post_json  # noqa: E402
from chalicelib.runtime.gateway import SYNC_TURN, Arrival, run_turn  # noqa: E402
from chalicelib.runtime.in_memory import InMemoryServices, LocalProviders  # noqa: E402
from tests.support.tls import self_signed  # noqa: E402

UNDERSTOOD = {"intent": "question", "language": "en", "values": {}, "applicable_rules": [],
              "scenario_signal": "none", "scenario_id": None, "conditions_true": [], "confirmed": False}


class StandIn(ThreadingHTTPServer):
    """Answers every chat completion: the understanding document for a structured request, text otherwise."""

    daemon_threads = True

    def __init__(self, context: Any) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._context = context
        self.handshakes = 0
        self.requests = 0
        self.lock = threading.Lock()

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        with self.lock:
            self.handshakes += 1
        return self._context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    server: StandIn

    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with self.server.lock:
            self.server.requests += 1
        content = json.dumps(UNDERSTOOD) if "response_format" in request else "We open at 9am."
        body = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "model": "bench",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": content}}],
                           "usage": {"prompt_tokens": 100, "completion_tokens": 10}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class FreshLlmServices(InMemoryServices):
    """The turn gateway over memory, with the LLM built per turn as runtime/services.llm_for builds it."""

    def llm_for(self, tenant_id: str, config: Config) -> LlmProvider:
        return build_llm(config.llm, "sk-bench", allow_private=True, tenant_id=tenant_id)


def turns(server: StandIn, count: int) -> None:
    embedder = OfflineEmbedder()
    bundle = synthetic_bundle(50)
    published = PublishedBundle(tenant_id="bench", agent_id="a50", version=1, bundle=bundle, published_at="",
                                embedding_model=embedder.model, vectors=embed_bundle(bundle, embedder))
    platform = {"llm": {"provider": "openai", "base_url": server.base_url}, "network": {"allow_private": True}}
    unused = OfflineLlm()  # llm_for above answers instead
    svc = FreshLlmServices(LocalProviders(unused, embedder, http_tool_runner(HttpToolClient(allow_private=True))),
                           platform)
    svc.publish(published)
    key = SessionKey(tenant_id="bench", agent_id="a50", channel="api", user_id="u")
    per_turn: list[tuple[int, int]] = []
    for index in range(count + 1):
        handshakes, requests = server.handshakes, server.requests
        run_turn(svc, Arrival(key=key, text=MESSAGES[index % len(MESSAGES)]), SYNC_TURN)
        per_turn.append((server.handshakes - handshakes, server.requests - requests))
    cold, warm = per_turn[0], per_turn[1:]
    print(f"first turn: {cold[0]} TLS handshake(s) for {cold[1]} LLM call(s)")
    print(f"warm turns: {sum(h for h, _ in warm)} new TLS handshakes over {len(warm)} turns "
          f"({sum(h for h, _ in warm) / len(warm):.2f} per warm turn, target 0) "
          f"for {sum(r for _, r in warm)} LLM calls ({sum(r for _, r in warm) / len(warm):.1f} per turn)")


def latency(server: StandIn, calls: int) -> None:
    url = f"{server.base_url}/chat/completions"
    payload = {"model": "bench", "messages": [{"role": "user", "content": "When do you open?"}]}
    pooled, fresh = [], []
    send = guarded_send(allow_private=True)
    post_json(send, url, payload, 5.0)  # warm the pool
    for _ in range(calls):
        started = time.perf_counter()
        post_json(send, url, payload, 5.0)
        pooled.append((time.perf_counter() - started) * 1000)
        one_off = PooledTransport(allow_private=True)  # an empty pool: TCP connect and TLS every call
        started = time.perf_counter()
        post_json(one_off, url, payload, 5.0)
        fresh.append((time.perf_counter() - started) * 1000)
        one_off.close()
    print(f"per call over {calls} calls: pooled p50={statistics.median(pooled):.2f} ms, "
          f"fresh connection p50={statistics.median(fresh):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--calls", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        certificate = self_signed(Path(folder))
        os.environ["SSL_CERT_FILE"] = str(certificate.cert_path)
        server = StandIn(certificate.server_context())
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            turns(server, options.turns)
            latency(server, options.calls)
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
