"""The local stack's child processes: start each in its own process group, watch them, stop them all.

Each child gets a new session (so its own process group, and Ctrl-C in the terminal reaches only
infra/local.py, which then stops the children in order). Stopping signals the whole group, so the
grandchildren (chalice local's reloader worker, for one) go too: no orphans.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT_S = 10.0


class StartupError(Exception):
    """A step of the local stack could not start; the message says why and what to do."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _check_alive(process: subprocess.Popen[bytes], name: str, log: Path | None) -> None:
    code = process.poll()
    if code is not None:
        raise StartupError(f"{name} exited with code {code}" + (f": see {log}" if log else ""))


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, timeout_s: float = 30.0,
                  log: Path | None = None) -> None:
    """Return once something accepts connections on the port; StartupError if the process dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check_alive(process, name, log)
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise StartupError(f"{name} does not listen on port {port} after {timeout_s:.0f} s")


def wait_for_http(url: str, process: subprocess.Popen[bytes], name: str, timeout_s: float = 90.0,
                  log: Path | None = None) -> None:
    """Return once GET url answers 200; StartupError if the process dies first or it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check_alive(process, name, log)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise StartupError(f"{name} does not answer {url} after {timeout_s:.0f} s")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    relaunch: Callable[[], subprocess.Popen[bytes]] | None = None  # set for children restarted on exit


class Children:
    """The processes the local stack started, in start order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._children: list[Child] = []

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(self, name: str, argv: list[str], env: dict[str, str],
              cwd: Path | None = None, *, restart: bool = False) -> subprocess.Popen[bytes]:
        """Start a child. With `restart`, watch() starts it again whenever it exits on its own, as
        Lambda runs a new container after a crash (the worker, redis-server and chalice local)."""
        self.logs.mkdir(parents=True, exist_ok=True)

        def launch() -> subprocess.Popen[bytes]:
            with self.log_of(name).open("ab") as log:
                return subprocess.Popen(  # noqa: S603 - binaries of our venv, arguments we build
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                    start_new_session=True,
                )

        process = launch()
        self._children.append(Child(name, process, self.log_of(name), launch if restart else None))
        return process

    @staticmethod
    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port

    def watch(self, poll_s: float = 0.2) -> int:
        """Block while every child runs, restarting those started with `restart`; when another one
        exits on its own, say which and return 1."""
        while True:
            for child in self._children:
                code = child.process.poll()
                if code is None:
                    continue
                if child.relaunch is None:
                    print(f"  ✗ {child.name} exited with code {code}: see {child.log}", flush=True)
                    return 1
                _signal_group(child.process.pid, signal.SIGKILL)  # what the dead leader left behind
                child.process = child.relaunch()
                print(f"  ↻ {child.name} exited with code {code}: restarted (pid {child.process.pid})", flush=True)
            time.sleep(poll_s)

    def stop_all(self) -> int:
        """SIGTERM each child's process group, newest first; SIGKILL what is left after a timeout.

        Returns how many processes had been started. Never raises for a child that is already gone.
        """
        for child in reversed(self._children):
            _signal_group(child.process.pid, signal.SIGTERM)
            if not _wait_group(child.process, STOP_TIMEOUT_S):
                _signal_group(child.process.pid, signal.SIGKILL)
                _wait_group(child.process, STOP_TIMEOUT_S)
        return len(self._children)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the whole group is gone already
        os.killpg(pgid, signum)


def _wait_group(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """True once the leader is reaped and no process of its group is left."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            try:
                os.killpg(process.pid, 0)
            except (ProcessLookupError, PermissionError):
                return True
        time.sleep(0.05)
    return False
