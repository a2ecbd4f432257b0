"""Outbound delivery against a real local HTTP server standing in for each provider."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from chalicelib.channels import slack, twilio, webchat, whatsapp
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.errors import InvalidInput, Unavailable
from chalicelib.providers.transport import HttpRequest, HttpResponse, guarded_send
from tests.channels.factories import a_binding
from tests.support.chat_server import ChatServer

# The stand-in providers listen on 127.0.0.1: the guarded transport as a platform with
# network.allow_private (local development) builds it. The default refuses them (tests/security).
LOCAL = guarded_send(allow_private=True)
LONG_REPLY = "Your order has shipped. " * 10  # 240 characters


def no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def provider() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


# --- Twilio -----------------------------------------------------------------------------------------

def test_twilio_posts_a_form_with_basic_auth_to_the_accounts_messages_path(provider: ChatServer) -> None:
    provider.answer({"sid": "SM1"}, status=201)
    binding = a_binding(ChannelName.TWILIO, api_base_url=provider.url)
    sent = twilio.ADAPTER.send(binding, {"to": "+15550001", "from": "+15559999"}, "We open at 9.",
                               sleep=no_sleep, send=LOCAL)
    assert sent == ["SM1"]
    request = provider.requests[0]
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:twilio-token").decode()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body) == {"To": ["+15550001"], "From": ["+15559999"], "Body": ["We open at 9."]}


def test_twilio_splits_a_reply_longer_than_the_bindings_limit(provider: ChatServer) -> None:
    for n in range(3):
        provider.answer({"sid": f"SM{n}"}, status=201)
    binding = a_binding(ChannelName.TWILIO, api_base_url=provider.url, max_message_chars=100, **{"from": "+1999"})
    sent = twilio.ADAPTER.send(binding, {"to": "whatsapp:+1555"}, LONG_REPLY, sleep=no_sleep, send=LOCAL)
    bodies = [parse_qs(request.body)["Body"][0] for request in provider.requests]
    assert sent == ["SM0", "SM1", "SM2"]
    assert all(len(body) <= 100 for body in bodies)
    assert " ".join(bodies) == LONG_REPLY.strip()
    assert parse_qs(provider.requests[0].body)["From"] == ["+1999"]  # the config's sender number


def test_twilio_without_a_sender_number_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        twilio.ADAPTER.send(a_binding(ChannelName.TWILIO), {"to": "+1555"}, "hi", sleep=no_sleep, send=LOCAL)


# --- WhatsApp Cloud ---------------------------------------------------------------------------------

def test_whatsapp_posts_json_with_the_bearer_token_to_the_versioned_phone_number_path(
        provider: ChatServer) -> None:
    provider.answer({"messages": [{"id": "wamid.1"}]})
    binding = a_binding(ChannelName.WHATSAPP, api_base_url=provider.url)
    sent = whatsapp.ADAPTER.send(binding, {"to": "33612345678"}, "Bonjour", sleep=no_sleep, send=LOCAL)
    assert sent == ["wamid.1"]
    request = provider.requests[0]
    assert request.path == "/v21.0/1055/messages"
    assert request.headers["authorization"] == "Bearer EAAG-token"
    assert request.body["to"] == "33612345678"
    assert request.body["type"] == "text" and request.body["text"]["body"] == "Bonjour"
    assert request.body["messaging_product"] == "whatsapp"


def test_whatsapp_retries_a_5xx_and_then_delivers(provider: ChatServer) -> None:
    provider.fail(503)
    provider.fail(500)
    provider.answer({"messages": [{"id": "wamid.2"}]})
    binding = a_binding(ChannelName.WHATSAPP, api_base_url=provider.url, api_version="v19.0")
    assert whatsapp.ADAPTER.send(binding, {"to": "1"}, "hello", sleep=no_sleep, send=LOCAL) == ["wamid.2"]
    assert len(provider.requests) == 3
    assert provider.requests[-1].path == "/v19.0/1055/messages"


def test_whatsapp_does_not_retry_a_4xx(provider: ChatServer) -> None:
    provider.fail(400, "invalid recipient")
    provider.answer({"messages": [{"id": "never"}]})
    binding = a_binding(ChannelName.WHATSAPP, api_base_url=provider.url)
    with pytest.raises(Unavailable) as failure:
        whatsapp.ADAPTER.send(binding, {"to": "1"}, "hello", sleep=no_sleep, send=LOCAL)
    assert failure.value.details["retryable"] is False
    assert failure.value.details["status"] == 400
    assert len(provider.requests) == 1


def test_whatsapp_gives_up_after_the_retries_and_says_it_may_be_retried(provider: ChatServer) -> None:
    for _ in range(4):
        provider.fail(502)
    binding = a_binding(ChannelName.WHATSAPP, api_base_url=provider.url)
    with pytest.raises(Unavailable) as failure:
        whatsapp.ADAPTER.send(binding, {"to": "1"}, "hello", sleep=no_sleep, send=LOCAL)
    assert failure.value.details["retryable"] is True
    assert len(provider.requests) == 4  # one attempt and three retries


def test_a_timeout_is_retried() -> None:
    calls: list[HttpRequest] = []

    def flaky(request: HttpRequest) -> HttpResponse:
        calls.append(request)
        if len(calls) == 1:
            raise TimeoutError("slow")
        return HttpResponse(200, b'{"messages": [{"id": "wamid.3"}]}')

    binding = a_binding(ChannelName.WHATSAPP)
    assert whatsapp.ADAPTER.send(binding, {"to": "1"}, "hi", send=flaky, sleep=no_sleep) == ["wamid.3"]
    assert calls[0].url == "https://graph.facebook.com/v21.0/1055/messages"
    assert len(calls) == 2


def test_whatsapp_without_a_recipient_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        whatsapp.ADAPTER.send(a_binding(ChannelName.WHATSAPP), {}, "hi", sleep=no_sleep, send=LOCAL)


# --- Slack -------------------------------------------------------------------------------------------

def test_slack_posts_to_chat_post_message_in_the_users_thread(provider: ChatServer) -> None:
    provider.answer({"ok": True, "ts": "1700000000.000200"})
    binding = a_binding(ChannelName.SLACK, api_base_url=provider.url)
    sent = slack.ADAPTER.send(binding, {"channel": "C42", "thread_ts": "1700000000.000100"}, "Done!",
                              sleep=no_sleep, send=LOCAL)
    assert sent == ["1700000000.000200"]
    request = provider.requests[0]
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == "Bearer xoxb-bot"
    assert request.body == {"channel": "C42", "text": "Done!", "thread_ts": "1700000000.000100"}


def test_slack_ok_false_is_a_failure_even_with_status_200(provider: ChatServer) -> None:
    provider.answer({"ok": False, "error": "channel_not_found"})
    binding = a_binding(ChannelName.SLACK, api_base_url=provider.url)
    with pytest.raises(Unavailable) as failure:
        slack.ADAPTER.send(binding, {"channel": "C404"}, "hi", sleep=no_sleep, send=LOCAL)
    assert "channel_not_found" in failure.value.details["reason"]
    assert len(provider.requests) == 1


def test_a_failure_midway_reports_the_parts_already_sent(provider: ChatServer) -> None:
    provider.answer({"ok": True, "ts": "1.1"})
    provider.fail(404)
    binding = a_binding(ChannelName.SLACK, api_base_url=provider.url, max_message_chars=100,
                        **{"channel": "CDEF"})
    with pytest.raises(Unavailable) as failure:
        slack.ADAPTER.send(binding, {}, LONG_REPLY, sleep=no_sleep, send=LOCAL)
    assert failure.value.details["sent"] == ["1.1"]
    assert provider.requests[0].body["channel"] == "CDEF"  # the binding's default channel


def test_slack_without_a_channel_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        slack.ADAPTER.send(a_binding(ChannelName.SLACK), {}, "hi", sleep=no_sleep, send=LOCAL)


def test_webchat_sends_nothing_because_the_page_polls_the_transcript() -> None:
    assert webchat.SENDER.send(a_binding(ChannelName.WEBCHAT), {}, "hello") == []
