"""Webhook acknowledgement latency and queue throughput on the local stack (DESIGN.md §7).

Starts `python -m infra.local` (moto_server, redis-server, chalice local, the queue worker) on
free ports, binds a Twilio channel whose API is a local stand-in, then:
1. with the queue worker stopped (RUCHE_LOCAL_WORKER=0: in AWS the webhook and the worker are
   separate Lambdas, here they would share two cores), sends N signed Twilio webhooks one after
   another and times each acknowledgement (budget: p99 <= 300 ms locally);
2. with the worker running, does the same (acknowledgements under contention) and measures how
   fast the worker answers them: turns delivered per second, from the first webhook to the last
   reply reaching the Twilio stand-in (offline provider).

    .venv/bin/python bench/webhooks.py [--messages 120] [--users 40]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
SID, TOKEN = "AC00000000000000000000000000000002", "bench-auth-token"
BANNER_END = "Press Ctrl-C to stop everything."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TwilioStandIn:
    """Counts the replies the worker sends to Twilio's Messages API."""

    def __init__(self) -> None:
        self.delivered: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.delivered.append(time.perf_counter())
                body = b'{"sid": "SMbench", "status": "queued"}'
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start_stack(logs: str, *, worker: bool) -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "RUCHE_LOCAL_WORKER": "1" if worker else "0",
           "RUCHE_LOCAL_PORT": str(free_port()), "RUCHE_LOCAL_AWS_PORT": str(free_port()),
           "RUCHE_LOCAL_TOOLS_PORT": "0", "RUCHE_LOCAL_LOGS": logs, "PYTHONUNBUFFERED": "1",
           "POWERTOOLS_LOG_LEVEL": "WARNING"}
    for name in ("AWS_ENDPOINT_URL", "REDIS_URL", "RUCHE_ADMIN_KEY"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    output = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if line.strip() == BANNER_END:
            break
    text = "".join(output)
    api = re.search(r"^\s+API\s+(\S+)", text, re.MULTILINE)
    key = re.search(r"^\s+Tenant key\s+(\S+)", text, re.MULTILINE)
    if not (api and key):
        raise SystemExit(f"the local stack did not start:\n{text}")
    threading.Thread(target=lambda: [None for _ in process.stdout or []], daemon=True).start()
    return process, api.group(1), key.group(1)


def send_webhooks(api: str, key: str, twilio: TwilioStandIn, messages: int, users: int,
                  prefix: str) -> tuple[list[float], float]:
    """Bind a Twilio channel and send `messages` signed webhooks; (ack latencies in ms, start time)."""
    binding = requests.post(f"{api}/v1/agents/retail-returns/channels", timeout=30,
                            headers={"Authorization": f"Bearer {key}"},
                            json={"channel": "twilio", "api_base_url": twilio.url,
                                  "secrets": {"account_sid": SID, "auth_token": TOKEN},
                                  "config": {"from": "+15559990000"}}).json()
    url, validator, session = binding["webhook_url"], RequestValidator(TOKEN), requests.Session()
    latencies = []
    first = time.perf_counter()
    for index in range(messages):
        form = {"MessageSid": f"SM{prefix}{index:05d}", "From": f"+1555{index % users:07d}",
                "To": "+15559990000", "Body": "When are you open on Saturday?"}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(url, form)}
        started = time.perf_counter()
        response = session.post(url, data=urlencode(form), headers=headers, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"webhook refused: {response.status_code} {response.text}")
    return latencies, first


def report(latencies: list[float], label: str) -> None:
    ordered = sorted(latencies)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    print(f"webhook acknowledgement, {label}, {len(ordered)} Twilio webhooks: "
          f"p50={statistics.median(ordered):.1f} ms p99={p99:.1f} ms (budget: p99 <= 300 ms locally)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=120)
    parser.add_argument("--users", type=int, default=40)
    args = parser.parse_args()
    for worker in (False, True):
        twilio = TwilioStandIn()
        with tempfile.TemporaryDirectory() as logs:
            process, api, key = start_stack(logs, worker=worker)
            try:
                latencies, first = send_webhooks(api, key, twilio, args.messages, args.users,
                                                 "w" if worker else "a")
                report(latencies, "worker running on the same cores" if worker else "worker stopped")
                if worker:
                    measure_throughput(twilio, first, args)
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)


def measure_throughput(twilio: TwilioStandIn, first: float, args: argparse.Namespace) -> None:
    # Every user's messages end in at least one reply; wait until the count stops growing.
    settled, last = time.monotonic() + 5, -1
    while time.monotonic() < settled + 120:
        if len(twilio.delivered) != last:
            last, settled = len(twilio.delivered), time.monotonic() + 5
        elif time.monotonic() > settled:
            break
        time.sleep(0.2)
    turns = len(twilio.delivered)
    elapsed = (twilio.delivered[-1] - first) if turns else float("nan")
    print(f"queue throughput, offline provider: {turns} turns answered in {elapsed:.1f} s = "
          f"{turns / elapsed:.1f} turns/s ({args.messages} messages from {args.users} users; "
          f"messages waiting together are one turn)")


if __name__ == "__main__":
    main()
