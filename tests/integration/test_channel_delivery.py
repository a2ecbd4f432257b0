"""A Twilio-style webhook sent to the running local stack gets its reply delivered.

Everything is a real process talking HTTP: `python -m infra.local` (moto_server, redis-server,
chalice local, the queue worker), and a local HTTP server standing in for Twilio's REST API that
the binding's api_base_url points at. The webhook is signed with the official twilio SDK.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode

import pytest
import requests
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from tests.integration.conftest import LocalStack, read_logs
from tests.support.chat_server import ChatServer

pytestmark = pytest.mark.integration

SID, TOKEN = "AC00000000000000000000000000000001", "integration-auth-token"


@pytest.fixture
def twilio_api() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def test_an_sms_webhook_to_the_running_stack_is_answered_through_twilio(
        local_stack: LocalStack, twilio_api: ChatServer) -> None:
    headers = {"Authorization": f"Bearer {local_stack.tenant_key}"}
    created = requests.post(f"{local_stack.api_url}/v1/agents/retail-returns/channels", headers=headers,
                            timeout=30, json={"channel": "twilio", "api_base_url": twilio_api.url,
                                              "secrets": {"account_sid": SID, "auth_token": TOKEN},
                                              "config": {"from": "+15559990000"}})
    assert created.status_code == 201, created.text
    webhook_url = created.json()["webhook_url"]
    form = {"MessageSid": "SMintegration1", "From": "+15550000001", "To": "+15559990000",
            "Body": "What are your opening hours?"}
    signature = RequestValidator(TOKEN).compute_signature(webhook_url, form)
    twilio_api.answer({"sid": "SMreply", "status": "queued"}, status=201)

    acknowledged = requests.post(webhook_url, data=urlencode(form), timeout=30, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})

    assert acknowledged.status_code == 200, acknowledged.text
    deadline = time.monotonic() + 60
    while not twilio_api.requests and time.monotonic() < deadline:
        time.sleep(0.2)
    assert twilio_api.requests, f"no reply reached the Twilio stand-in\n{read_logs(local_stack.logs)}"
    sent = twilio_api.requests[0]
    assert sent.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    fields = parse_qs(sent.body if isinstance(sent.body, str) else "")
    assert fields["To"] == ["+15550000001"]
    assert "Monday to Friday" in fields["Body"][0]
