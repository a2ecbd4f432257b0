"""Webhook adapters on their own: signatures made by the official SDKs, parsing of provider payloads."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from chalicelib.channels import slack, twilio, webchat, whatsapp
from chalicelib.channels.base import Handshake
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.errors import BadSignature, Forbidden, Unauthorized
from tests.channels.factories import SECRETS, a_binding

SERVER_SECRET = b"server-secret"


def test_twilio_accepts_the_sdks_signature_with_or_without_the_default_port() -> None:
    form = {"MessageSid": "SM1", "From": "whatsapp:+1555", "To": "whatsapp:+1999", "Body": "hola"}
    validator = RequestValidator(SECRETS[ChannelName.TWILIO]["auth_token"])
    signed = validator.compute_signature("https://hooks.example.com:443/v1/webhooks/twilio/b", form)
    binding = a_binding(ChannelName.TWILIO)
    twilio.ADAPTER.verify(binding, {"x-twilio-signature": signed}, urlencode(form).encode(),
                          "https://hooks.example.com/v1/webhooks/twilio/b")
    [message] = twilio.ADAPTER.parse(binding, {}, urlencode(form).encode())  # type: ignore[misc]
    assert message.user_id == "whatsapp:+1555" and message.reply_to == {"to": "whatsapp:+1555",
                                                                         "from": "whatsapp:+1999"}
    with pytest.raises(BadSignature):
        twilio.ADAPTER.verify(binding, {}, urlencode(form).encode(), "https://hooks.example.com/x")


def test_slack_accepts_the_sdks_signature_and_refuses_a_future_timestamp() -> None:
    body = b'{"type": "event_callback"}'
    now = int(time.time())
    adapter = slack.SlackAdapter(clock=lambda: float(now))
    verifier = SignatureVerifier(SECRETS[ChannelName.SLACK]["signing_secret"])
    binding = a_binding(ChannelName.SLACK)
    signed = str(verifier.generate_signature(timestamp=str(now), body=body))
    adapter.verify(binding, {"x-slack-request-timestamp": str(now), "x-slack-signature": signed}, body, "")
    later = str(now + 600)
    with pytest.raises(BadSignature):
        adapter.verify(binding, {"x-slack-request-timestamp": later,
                                 "x-slack-signature": str(verifier.generate_signature(timestamp=later, body=body))},
                       body, "")


def test_slack_payloads_that_are_no_user_message_need_nothing() -> None:
    binding = a_binding(ChannelName.SLACK)
    assert slack.ADAPTER.parse(binding, {}, b"[]") == []
    assert slack.ADAPTER.parse(binding, {}, json.dumps({"type": "app_rate_limited"}).encode()) == []
    only_mention = {"type": "event_callback", "event": {"type": "app_mention", "user": "U1", "channel": "C1",
                                                         "ts": "1.0", "text": "<@UBOT>"}}
    assert slack.ADAPTER.parse(binding, {}, json.dumps(only_mention).encode()) == []


def test_whatsapp_buttons_and_list_choices_are_read_as_text_and_media_is_skipped() -> None:
    def message(wamid: str, kind: str, **content: object) -> dict[str, object]:
        return {"from": "336", "id": wamid, "timestamp": "oops", "type": kind, **content}

    value = {"metadata": {"phone_number_id": "1055"}, "messages": [
        message("w1", "button", button={"text": "Yes"}),
        message("w2", "interactive", interactive={"list_reply": {"title": "Tuesday"}}),
        message("w3", "image", image={"id": "media1"}),
    ]}
    document = {"entry": [{"changes": [{"field": "account_update", "value": {}},
                                       {"field": "messages", "value": value}]}]}
    found = whatsapp.ADAPTER.parse(a_binding(ChannelName.WHATSAPP), {}, json.dumps(document).encode())
    assert isinstance(found, list)
    assert [(m.provider_message_id, m.text) for m in found] == [("w1", "Yes"), ("w2", "Tuesday")]
    assert all(m.received_at > 1_000_000_000 for m in found)  # an unreadable timestamp is "now"


def test_the_whatsapp_handshake_needs_the_subscribe_mode() -> None:
    binding = a_binding(ChannelName.WHATSAPP)
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"}
    assert whatsapp.handshake(binding, query) == Handshake(200, "42", "text/plain")
    with pytest.raises(Forbidden):
        whatsapp.handshake(binding, {**query, "hub.mode": "unsubscribe"})


def test_a_visitor_token_is_valid_only_for_the_binding_and_secret_that_issued_it() -> None:
    binding = a_binding(ChannelName.WEBCHAT)
    token = webchat.issue_visitor_token(binding, SERVER_SECRET)
    visitor = webchat.visitor_of(binding, token, SERVER_SECRET)
    assert token == f"vt_{visitor}.{token.split('.')[1]}" and len(visitor) == 32
    other = binding.model_copy(update={"binding_id": "bnd_other"})
    rotated = binding.model_copy(update={"secrets": {"token": "new-token"}})
    for wrong_binding, secret in ((other, SERVER_SECRET), (rotated, SERVER_SECRET), (binding, b"other")):
        with pytest.raises(Forbidden):
            webchat.visitor_of(wrong_binding, token, secret)
    with pytest.raises(Forbidden):
        webchat.visitor_of(binding, "vt_garbage", SERVER_SECRET)


def test_the_binding_token_must_come_as_a_bearer_token() -> None:
    binding = a_binding(ChannelName.WEBCHAT)
    webchat.check_binding_token(binding, {"authorization": "Bearer wc-public-token"})
    for header in ("Basic wc-public-token", "Bearer wrong", ""):
        with pytest.raises(Unauthorized):
            webchat.check_binding_token(binding, {"authorization": header})
