"""Slack Events API: v0 request signatures, url_verification, message events, chat.postMessage.

The signature is "v0=" + hex HMAC-SHA256(signing_secret, "v0:{timestamp}:{raw body}"); requests
older (or newer) than five minutes are refused, so a captured request cannot be replayed later.
Retries (X-Slack-Retry-Num) carry the same event and are answered 200 and deduplicated by the
message's channel and ts - which also folds the `message` and `app_mention` events of one mention
into one. Bot messages (bot_id, or any subtype: edits, joins, the agent's own replies) are ignored,
so the agent never answers itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.channels.base import (
    GUARDED_SEND,
    Handshake,
    Headers,
    InboundMessage,
    Parsed,
    api_url,
    json_body,
    json_field,
    json_request,
    message_limit,
    post_with_retries,
    same_secret,
    send_parts,
    split_message,
)
from chalicelib.domain.channel import ChannelBinding
from chalicelib.domain.errors import BadSignature, InvalidInput
from chalicelib.providers.transport import HttpResponse, Send

DEFAULT_API = "https://slack.com"
MAX_TEXT_CHARS = 4000  # Slack's advice for one message (it truncates at 40,000)
MAX_SKEW_S = 300
_MESSAGE_EVENTS = {"message", "app_mention"}
_LEADING_MENTION = re.compile(r"^(?:\s*<@[A-Z0-9]+>\s*)+")


def signature(signing_secret: str, timestamp: str, raw_body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + raw_body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class SlackAdapter:
    name = "slack"
    ack = Handshake(200, "", "text/plain")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def verify(self, binding: ChannelBinding, headers: Headers, raw_body: bytes, url: str) -> None:
        timestamp, given = headers.get("x-slack-request-timestamp", ""), headers.get("x-slack-signature", "")
        secret = binding.secrets.get("signing_secret", "")
        plain = timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12  # int() of 5,000 digits raises
        if not (plain and abs(self._clock() - int(timestamp)) <= MAX_SKEW_S):
            raise BadSignature("the X-Slack-Request-Timestamp is missing or too old")
        if not (given and secret and same_secret(signature(secret, timestamp, raw_body), given)):
            raise BadSignature("the X-Slack-Signature does not match")

    def parse(self, binding: ChannelBinding, headers: Headers, raw_body: bytes) -> Parsed:
        document = json_body(raw_body)
        if not isinstance(document, dict):
            return []
        if document.get("type") == "url_verification":
            return Handshake(200, str(document.get("challenge", "")), "text/plain")
        event: Any = document.get("event")
        if document.get("type") != "event_callback" or not _is_user_message(event):
            return []
        text = _LEADING_MENTION.sub("", str(event.get("text", ""))).strip()
        if not text:
            return []
        reply_to = {"channel": str(event["channel"])}
        if event.get("thread_ts"):
            reply_to["thread_ts"] = str(event["thread_ts"])  # answer inside the thread the user wrote in
        return [InboundMessage(
            channel=self.name, binding_id=binding.binding_id,
            provider_message_id=f"{event['channel']}:{event['ts']}", user_id=str(event["user"]), text=text,
            received_at=_seconds(event.get("ts")), reply_to=reply_to,
        )]

    def send(self, binding: ChannelBinding, reply_to: Mapping[str, str], text: str, *,
             send: Send = GUARDED_SEND, sleep: Callable[[float], None] = time.sleep) -> list[str]:
        """chat.postMessage per part; Slack's ok:false (200) is a failure. The ts of each message."""
        token = binding.secrets.get("bot_token", "")
        channel = reply_to.get("channel") or str(binding.config.get("channel", ""))
        if not (token and channel):
            raise InvalidInput.at("reply_to", "slack needs bot_token and a channel")
        url = api_url(binding, DEFAULT_API, "/api/chat.postMessage")
        headers = {"Authorization": f"Bearer {token}"}

        def send_one(part: str) -> str:
            payload = {"channel": channel, "text": part}
            if reply_to.get("thread_ts"):
                payload["thread_ts"] = reply_to["thread_ts"]
            response = post_with_retries(json_request(url, payload, headers), channel=self.name, send=send,
                                         sleep=sleep, accept=_accepted)
            return str(json_field(response, "ts"))

        return send_parts(split_message(text, message_limit(binding, MAX_TEXT_CHARS)), send_one, self.name)


def _is_user_message(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and event.get("type") in _MESSAGE_EVENTS
        and not event.get("bot_id")
        and not event.get("subtype")
        and bool(event.get("user") and event.get("channel") and event.get("ts"))
    )


def _accepted(response: HttpResponse) -> str | None:
    if json_field(response, "ok") is True:
        return None
    return f"slack: {json_field(response, 'error') or 'not ok'}"


def _seconds(raw: object) -> float:
    try:
        return float(str(raw))
    except ValueError:
        return time.time()


ADAPTER = SlackAdapter()
