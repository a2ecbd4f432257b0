"""Fixtures for the `ruche` command: a CliRunner in a clean directory, and the app over real HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from chalice.test import Client
from click.testing import CliRunner, Result

from chalicelib.cli.main import cli
from chalicelib.runtime.services import reset_services
from tests.api.harness import Api, api

__all__ = ["api"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "agents"


@pytest.fixture(autouse=True)
def _clean_cli_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No server settings leak in from the machine: no env, no config file in cwd or HOME."""
    for name in (
        "RUCHE_URL",
        "RUCHE_API_KEY",
        "RUCHE_DEBUG",
        "RUCHE_LLM_PROVIDER",
        "RUCHE_LLM_BASE_URL",
        "RUCHE_LLM_API_KEY_ENV",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


def ruche(*args: str, input: str | None = None) -> Result:
    """Run `ruche ARGS` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


class _ChaliceHandler(BaseHTTPRequestHandler):
    """Hands each HTTP request to Chalice's test client: the app, spoken to over a real socket."""

    client: Client

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items()}
        response = self.client.http.request(self.command, self.path, headers=headers, body=body)
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, str(value))
        payload = response.body or b""
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _forward

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        return


@dataclass
class Stack:
    url: str
    key: str
    api: Api


@pytest.fixture
def stack(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The app on moto behind a real HTTP server on 127.0.0.1, and a fresh tenant's key.

    The example tools live on 127.0.0.1, so the platform allows private addresses (as `make run` does).
    The platform's tools.base_url is a port this fixture holds without listening: a tool call there is
    refused at once, whatever else runs on the machine (no test depends on a fixed port being free).
    """
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "1")
    monkeypatch.setenv("RUCHE_TOOLS_BASE_URL", f"http://127.0.0.1:{closed.getsockname()[1]}")
    reset_services()
    _, key = api.new_tenant()
    handler = type("Handler", (_ChaliceHandler,), {"client": api.client})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Stack(url=f"http://127.0.0.1:{server.server_address[1]}", key=key, api=api)
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()
    closed.close()
