"""What every channel shares: the inbound/outbound shapes, the adapter contract, splitting, delivery.

A channel adapter verifies a provider's signature, parses its webhook into InboundMessages, and
sends a reply through the provider's API. Formatting (length limit, markdown or plain) already
happened in FOCAL from the channel's config layer; channels only split a long reply into several
messages at delivery.

Delivery goes through an injectable `send` (providers/transport.py), by default the guarded
transport every outbound request uses: the binding's api_base_url is judged again at each send, and
so is the address each connection reached (runtime/delivery.py passes the platform's
network.allow_private). Path segments taken from secrets, config or the inbound message are
percent-quoted (`path_segment`), so they cannot add a path of their own.
5xx answers, 429s, timeouts and unreachable hosts are retried with exponential backoff; a 4xx is
final. A failed delivery raises Unavailable whose details say the HTTP status, whether it was
retryable, and the provider ids of the parts already sent.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from chalicelib.domain.channel import ChannelBinding
from chalicelib.domain.documents import load_json
from chalicelib.domain.errors import Unavailable
from chalicelib.providers.retry import Retryable, with_retries
from chalicelib.providers.transport import HttpRequest, HttpResponse, RefusedPeer, Send, guarded_send

SEND_TIMEOUT_S = 10.0
SEND_RETRIES = 3
BACKOFF_BASE_S = 0.5

Headers = Mapping[str, str]  # lower-cased header names
GUARDED_SEND = guarded_send(allow_private=False)  # the senders' default: public hosts only


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One user message, normalised. `reply_to` holds what delivery needs (Slack channel, Twilio To/From)."""

    channel: str
    binding_id: str
    provider_message_id: str
    user_id: str  # the channel's own user id: phone number, WhatsApp wa_id, Slack user id, visitor id
    text: str
    received_at: float  # epoch seconds
    reply_to: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One reply to deliver through a binding, to where the inbound message came from."""

    channel: str
    binding_id: str
    reply_to: Mapping[str, str]
    text: str


@dataclass(frozen=True, slots=True)
class Handshake:
    """A webhook that is no message: answer it as is (Slack url_verification, WhatsApp hub.challenge)."""

    status: int = 200
    body: str = ""
    content_type: str = "text/plain"


Parsed = list[InboundMessage] | Handshake


class ChannelSender(Protocol):
    """Delivery through one provider's API (webchat's transcript is polled: it sends nothing)."""

    name: str

    def send(self, binding: ChannelBinding, reply_to: Mapping[str, str], text: str, *,
             send: Send = ..., sleep: Callable[[float], None] = ...) -> list[str]:
        """Deliver `text` (split when longer than the channel allows); the provider message ids.

        Raises Unavailable (details: retryable, status, sent = ids of parts already delivered) and
        InvalidInput when the binding or reply_to lacks what the provider needs.
        """


class ChannelAdapter(ChannelSender, Protocol):
    """One provider's webhook and API."""

    ack: Handshake  # the answer to a webhook whose messages were accepted (or were nothing to do)

    def verify(self, binding: ChannelBinding, headers: Headers, raw_body: bytes, url: str) -> None:
        """Raises BadSignature unless the provider signed this request with the binding's secret."""

    def parse(self, binding: ChannelBinding, headers: Headers, raw_body: bytes) -> Parsed:
        """The messages of a verified webhook (possibly none), or a Handshake to answer as is.

        Raises InvalidJson for a body that is not the provider's format.
        """


# --- splitting -------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…](?:[\"')\]]*)\s")


def split_message(text: str, limit: int) -> list[str]:
    """Cut `text` into parts of at most `limit` characters, at the most natural boundary.

    In order of preference: a paragraph break, a sentence end, a space - each only when it lies
    beyond half the limit (so no tiny parts) - else a hard cut. Parts are stripped; empty text
    gives no part.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _cut_point(text: str, limit: int) -> int:
    window, half = text[: limit + 1], limit // 2
    paragraph = window.rfind("\n\n")
    if paragraph > half:
        return paragraph
    sentence_ends = [match.end() for match in _SENTENCE_END.finditer(window) if match.end() - 1 <= limit]
    if sentence_ends and sentence_ends[-1] > half:
        return sentence_ends[-1]
    space = max(window.rfind(" "), window.rfind("\n"))
    if space > half:
        return space
    return limit


# --- delivery ---------------------------------------------------------------------------------------

def api_url(binding: ChannelBinding, default_base: str, path: str) -> str:
    """The provider URL of `path`: the binding's api_base_url replaces scheme and host; the path stays."""
    base = binding.api_base_url or default_base
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}{path}"


def path_segment(value: str) -> str:
    """`value` as one URL path segment: "/", "?", "#", "%" and the rest percent-quoted."""
    return quote(value, safe="")


def json_request(url: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> HttpRequest:
    """A JSON POST to a provider API."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    all_headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json", **headers}
    return HttpRequest("POST", url, all_headers, body, SEND_TIMEOUT_S)


def same_secret(expected: str, given: str) -> bool:
    """A constant-time comparison that also takes non-ASCII input (str compare_digest raises on it)."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def post_with_retries(request: HttpRequest, *, channel: str, send: Send = GUARDED_SEND,
                      sleep: Callable[[float], None] = time.sleep,
                      accept: Callable[[HttpResponse], str | None]) -> HttpResponse:
    """POST with retries on 5xx/429/timeouts; `accept` returns an error reason for a 2xx that failed.

    Raises Unavailable(status=..., retryable=...) when the provider refused or never answered.
    """

    def attempt() -> HttpResponse:
        try:
            response = send(request)
        except RefusedPeer as exc:  # a private address: asking again would reach it again
            raise Unavailable(f"{channel} delivery refused by the network guard", channel=channel,
                              reason="blocked_destination", retryable=False) from exc
        except (TimeoutError, ConnectionError) as exc:
            raise Retryable(type(exc).__name__) from exc
        if response.status >= 500 or response.status == 429:
            raise Retryable(f"http {response.status}")
        return response

    try:
        response = with_retries(attempt, max_retries=SEND_RETRIES, backoff_base_s=BACKOFF_BASE_S, sleep=sleep)
    except Retryable as exc:
        raise Unavailable(f"{channel} delivery failed after retries", channel=channel,
                          reason=exc.reason, retryable=True) from exc
    reason = f"http {response.status}" if response.status >= 300 else accept(response)
    if reason is not None:
        raise Unavailable(f"{channel} refused the message", channel=channel, reason=reason,
                          status=response.status, retryable=False)
    return response


def json_field(response: HttpResponse, *path: str | int) -> Any:
    """A value inside a JSON answer, or None when the answer is not JSON or lacks it."""
    try:
        value: Any = response.json()
    except ValueError:
        return None
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def send_parts(parts: list[str], send_one: Callable[[str], str], channel: str) -> list[str]:
    """Send each part in order; a failure reports the ids of the parts already sent (never resend them)."""
    sent: list[str] = []
    for part in parts:
        try:
            sent.append(send_one(part))
        except Unavailable as exc:
            exc.details["sent"] = list(sent)
            exc.details.setdefault("channel", channel)
            raise
    return sent


def message_limit(binding: ChannelBinding, default: int) -> int:
    """The binding's `max_message_chars` when set (a smaller limit for a given number), else the channel's."""
    configured = binding.config.get("max_message_chars")
    return configured if isinstance(configured, int) and 0 < configured <= default else default


def json_body(raw_body: bytes) -> Any:
    """The JSON document of a webhook. Raises InvalidJson (also when nested too deeply)."""
    return load_json(raw_body, "the webhook body")
