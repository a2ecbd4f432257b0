"""A Twilio SMS in, the agent's reply out: webhook -> queue -> worker -> Twilio's Messages API.

Twilio's API is played by a local HTTP server (the binding's api_base_url points at it); the
webhook is signed with the official twilio SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode

import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from chalicelib.runtime.local_worker import poll_once
from chalicelib.runtime.services import reset_services, services
from tests.api.harness import Api
from tests.support.chat_server import ChatServer

HOST = "hooks.example.com"
SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "twilio-auth-token"
AGENT = {
    "agent": {"name": "Store", "config": {}},
    "templates": [{"id": "hours", "mode": "exclusive", "text": "We open at 9am, Monday to Saturday."}],
    "rules": [{"id": "opening_hours", "condition": "the customer asks when the store opens or its opening hours",
               "action": "give the opening hours", "templates": ["hours"]}],
    "channels": {"twilio": {"config": {"response": {"format": "plain", "max_length": 320}}}},
}


@pytest.fixture
def twilio_api() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def test_an_sms_gets_its_reply_through_twilio_once_even_when_redelivered(
        api: Api, twilio_api: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")
    reset_services()
    api.services = services()
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/store", key, AGENT).status_code == 200
    binding = api.call("POST", "/v1/agents/store/channels", key, {
        "channel": "twilio", "secrets": {"account_sid": SID, "auth_token": TOKEN},
        "api_base_url": twilio_api.url, "config": {"from": "+15559999"}})
    assert binding.status_code == 201, binding.body
    binding_id = binding.json_body["binding_id"]
    form = {"MessageSid": "SM42", "From": "+15550001", "To": "+15559999", "Body": "When do you open?"}
    url = f"https://{HOST}/v1/webhooks/twilio/{binding_id}"
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    twilio_api.answer({"sid": "SMreply1", "status": "queued"}, status=201)
    # WHEN Twilio delivers the webhook three times (it retries when unsure)
    for _ in range(3):
        response = api.call("POST", f"/v1/webhooks/twilio/{binding_id}", raw=urlencode(form),
                            content_type="application/x-www-form-urlencoded",
                            headers={"Host": HOST, "X-Twilio-Signature": signature})
        assert response.status_code == 200
    while poll_once(api.services, wait_s=0):
        pass
    # THEN exactly one reply went out through Twilio's Messages API, to the sender
    sent = [request for request in twilio_api.requests if request.method == "POST"]
    assert len(sent) == 1
    assert sent[0].path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    fields = parse_qs(sent[0].body if isinstance(sent[0].body, str) else "")
    assert fields["To"] == ["+15550001"]
    assert fields["Body"] == ["We open at 9am, Monday to Saturday."]
