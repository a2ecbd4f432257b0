"""Local-stack fixtures: `python -m infra.local` as a subprocess on free ports, and its process tree."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra.local import BANNER_END
from tests.conftest import ROOT, free_port

STARTUP_TIMEOUT_S = 240.0  # moto's CloudFormation and chalice's import are slow on a busy 2-core box
STOP_TIMEOUT_S = 60.0


@dataclass
class LocalStack:
    """A running `python -m infra.local` and what its banner said."""

    process: subprocess.Popen[str]
    logs: Path
    lines: list[str] = field(default_factory=list)
    banner_seen: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def banner_value(self, label: str) -> str:
        """The value printed after a banner label, e.g. `Tenant key`."""
        match = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", self.output, re.MULTILINE)
        assert match, f"no {label!r} in the banner:\n{self.output}"
        return match.group(1)

    @property
    def api_url(self) -> str:
        return self.banner_value("API")

    @property
    def tenant_key(self) -> str:
        return self.banner_value("Tenant key")

    def wait(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """The exit code, once the process has exited and all its output has been read."""
        code = self.process.wait(timeout=timeout_s)
        if self.reader is not None:
            self.reader.join(timeout=timeout_s)
        return code

    def interrupt(self) -> int:
        """Ctrl-C, then the exit code once it has stopped."""
        self.process.send_signal(signal.SIGINT)
        return self.wait()


def stack_env(logs: Path, **extra: str) -> dict[str, str]:
    """Free ports and a private log folder; never a user's endpoint, Redis or AWS profile."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"AWS_ENDPOINT_URL", "REDIS_URL", "AWS_PROFILE", "RUCHE_ADMIN_KEY"}}
    env.update({
        "RUCHE_LOCAL_PORT": str(free_port()),
        "RUCHE_LOCAL_AWS_PORT": str(free_port()),
        "RUCHE_LOCAL_TOOLS_PORT": "0",
        "RUCHE_LOCAL_LOGS": str(logs),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def launch(logs: Path, **extra: str) -> LocalStack:
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local"], cwd=ROOT, env=stack_env(logs, **extra),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    stack = LocalStack(process=process, logs=logs)

    def read() -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                stack.lines.append(line.rstrip("\n"))
                if line.strip() == BANNER_END:
                    stack.banner_seen.set()

    stack.reader = threading.Thread(target=read, name="local-stack-output", daemon=True)
    stack.reader.start()
    return stack


def start(logs: Path) -> LocalStack:
    """Launch the stack and wait for its banner; fails with the output if it exits or never gets there."""
    stack = launch(logs)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not stack.banner_seen.wait(0.2):
        if stack.process.poll() is not None or time.monotonic() > deadline:
            stop(stack)
            pytest.fail(f"the local stack did not start:\n{stack.output}\n{read_logs(logs)}")
    return stack


def stop(stack: LocalStack) -> None:
    if stack.process.poll() is None:
        stack.interrupt()
    else:
        stack.wait()


def read_logs(logs: Path) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(logs.glob("*.log")))


def descendants(pid: int) -> set[int]:
    """Every live process under pid (children, grandchildren, ...), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited while we looked
        fields = text.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One local stack shared by a module's tests (starting it takes a while)."""
    stack = start(tmp_path_factory.mktemp("local-stack-logs"))
    yield stack
    stop(stack)
