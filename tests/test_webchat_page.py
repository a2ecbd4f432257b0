"""The webchat page in Debian's headless chromium: a visitor sends a message and sees the reply.

Needs /usr/bin/chromium (apt-get install chromium) and the playwright Python package (its own
browsers are not used). The app is served in-process by a small threaded HTTP server in front of
Chalice's LocalGateway, so it shares the test's moto (the `aws` fixture).
"""

# ruff: noqa: F811 - the imported `api` fixture is requested as a parameter (pytest's way)
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from chalice.config import Config
from chalice.local import LocalGateway

from app import app
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.turn import Outcome, TranscriptMessage, TurnCommit, TurnRecord
from tests.api.harness import (
    Api,
    a_bundle,
    api,  # noqa: F401 - the fixture, requested by name below
)
from tests.channels.factories import SECRETS
from tests.conftest import Aws

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


class AppServer:
    """The Chalice app over real HTTP on 127.0.0.1 (one request at a time through the gateway)."""

    def __init__(self) -> None:
        gateway, lock = LocalGateway(app, Config()), threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with lock:  # Chalice keeps the current request on the app object
                    answer: dict[str, Any] = gateway.handle_request(self.command, self.path, headers, body)
                payload = answer["body"] if isinstance(answer["body"], bytes) else str(answer["body"]).encode()
                self.send_response(answer["statusCode"])
                for name, value in answer["headers"].items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle  # the stdlib's names

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> AppServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def served(api: Api) -> Iterator[AppServer]:
    with AppServer() as server:
        yield server


def reply_from_the_queue(api: Api, aws: Aws, reply: str) -> str:
    """Act as the queue worker for the one queued webchat turn: commit its message and a reply."""
    deadline = time.monotonic() + 20
    messages: list[Any] = []
    while not messages and time.monotonic() < deadline:
        messages = aws.sqs.receive_message(QueueUrl=aws.queue_url, WaitTimeSeconds=1).get("Messages", [])
    turn = json.loads(messages[0]["Body"])
    session = api.services.sessions.get(turn["tenant_id"], turn["session_id"])
    assert session is not None
    record = TurnRecord(turn_id="turn_1", session_id=session.session_id, tenant_id=session.key.tenant_id,
                        agent_id=session.key.agent_id, agent_version=1, interlocutor_id=session.interlocutor_id,
                        turn_number=1, channel="webchat", message=turn["text"], reply=reply, outcome=Outcome(),
                        created_at="2024-01-01T00:00:00Z")
    transcript = [TranscriptMessage(turn["message_id"], "user", turn["text"], "2024-01-01T00:00:00Z"),
                  TranscriptMessage("msg_agent_1", "agent", reply, "2024-01-01T00:00:01Z")]
    api.services.sessions.commit(TurnCommit(session=session.model_copy(update={"version": session.version + 1}),
                                            expected_version=session.version, record=record,
                                            transcript=transcript, now_s=time.time()))
    return str(turn["text"])


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="Debian's chromium is not installed (`make test` installs it: apt-get install chromium)")
def test_a_visitor_chats_with_the_agent_in_the_browser(api: Api, aws: Aws, served: AppServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    created = api.call("POST", "/v1/agents/support/channels", key,
                       {"channel": "webchat", "secrets": SECRETS[ChannelName.WEBCHAT]})
    binding_id = created.json_body["binding_id"]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{served.url}/v1/webhooks/webchat/{binding_id}/page")
            page.fill("#text", "Where is my parcel?")
            page.click("#send")
            expect(page.locator(".msg.user")).to_have_text("Where is my parcel?")
            assert reply_from_the_queue(api, aws, "It ships tomorrow.") == "Where is my parcel?"
            expect(page.locator(".msg.agent")).to_have_text("It ships tomorrow.", timeout=15_000)
            expect(page.locator(".msg.user")).to_have_count(1)  # the polled copy replaced the pending one
            expect(page.locator(".msg.pending")).to_have_count(0)
            assert page.evaluate("localStorage.length") == 1  # the visitor token, for the next visit
            if os.environ.get("RUCHE_SCREENSHOT"):  # to look at the page: RUCHE_SCREENSHOT=page.png
                page.screenshot(path=os.environ["RUCHE_SCREENSHOT"])
        finally:
            browser.close()
