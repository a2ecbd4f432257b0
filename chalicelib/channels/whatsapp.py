"""WhatsApp Cloud API: the GET verification handshake, X-Hub-Signature-256, JSON webhooks, /messages.

Webhooks carry `entry[].changes[]`; changes whose field is "messages" hold `value.messages[]`
(user messages) and/or `value.statuses[]` (delivery receipts: nothing to do). The signature is
"sha256=" + hex HMAC-SHA256(app_secret, raw body).
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
    path_segment,
    post_with_retries,
    same_secret,
    send_parts,
    split_message,
)
from chalicelib.domain.channel import ChannelBinding
from chalicelib.domain.errors import BadSignature, Forbidden, InvalidInput
from chalicelib.providers.transport import HttpResponse, Send

DEFAULT_API = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"
API_VERSION = re.compile(r"v\d{1,3}\.\d{1,3}")  # a Graph API version; anything else would add a path
MAX_TEXT_CHARS = 4096


def signature(app_secret: str, raw_body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def handshake(binding: ChannelBinding, query: Mapping[str, str]) -> Handshake:
    """Meta's GET verification: hub.challenge when hub.verify_token is the binding's. Raises Forbidden."""
    expected = binding.secrets.get("verify_token", "")
    given = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not expected or not same_secret(expected, given):
        raise Forbidden("the verify token does not match")
    return Handshake(200, query.get("hub.challenge", ""), "text/plain")


def _text_of(message: Mapping[str, Any]) -> str:
    """The words of a message: text, a quick-reply button, or an interactive choice; "" otherwise."""
    kind = message.get("type")
    if kind == "text":
        return str((message.get("text") or {}).get("body", ""))
    if kind == "button":
        return str((message.get("button") or {}).get("text", ""))
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        choice = interactive.get("button_reply") or interactive.get("list_reply") or {}
        return str(choice.get("title", ""))
    return ""  # media, locations, reactions: not understood by the engine yet


class WhatsAppAdapter:
    name = "whatsapp"
    ack = Handshake(200, "", "text/plain")

    def verify(self, binding: ChannelBinding, headers: Headers, raw_body: bytes, url: str) -> None:
        given = headers.get("x-hub-signature-256", "")
        secret = binding.secrets.get("app_secret", "")
        if not (given and secret and same_secret(signature(secret, raw_body), given)):
            raise BadSignature("the X-Hub-Signature-256 does not match")

    def parse(self, binding: ChannelBinding, headers: Headers, raw_body: bytes) -> Parsed:
        document = json_body(raw_body)
        found: list[InboundMessage] = []
        entries = document.get("entry", []) if isinstance(document, dict) else []
        for entry in entries if isinstance(entries, list) else []:
            for change in (entry or {}).get("changes", []) or []:
                if not isinstance(change, dict) or change.get("field") != "messages":
                    continue
                value = change.get("value") or {}
                phone_number_id = str((value.get("metadata") or {}).get("phone_number_id", ""))
                for message in value.get("messages", []) or []:
                    text = _text_of(message).strip()
                    if not (text and message.get("id") and message.get("from")):
                        continue
                    found.append(InboundMessage(
                        channel=self.name, binding_id=binding.binding_id,
                        provider_message_id=str(message["id"]), user_id=str(message["from"]), text=text,
                        received_at=_timestamp(message.get("timestamp")),
                        reply_to={"to": str(message["from"]), "phone_number_id": phone_number_id},
                    ))
        return found

    def send(self, binding: ChannelBinding, reply_to: Mapping[str, str], text: str, *,
             send: Send = GUARDED_SEND, sleep: Callable[[float], None] = time.sleep) -> list[str]:
        """POST each part as a text message from the binding's phone number; the wamid of each."""
        token = binding.secrets.get("access_token", "")
        number = binding.secrets.get("phone_number_id") or reply_to.get("phone_number_id", "")
        if not (token and number and reply_to.get("to")):
            raise InvalidInput.at("reply_to", "whatsapp needs access_token, phone_number_id and to")
        version = str(binding.config.get("api_version") or DEFAULT_VERSION)
        if not API_VERSION.fullmatch(version):  # checked on write too; a binding stored before is refused here
            raise InvalidInput.at("config.api_version", "must look like v21.0")
        url = api_url(binding, DEFAULT_API, f"/{version}/{path_segment(number)}/messages")
        headers = {"Authorization": f"Bearer {token}"}

        def send_one(part: str) -> str:
            payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": reply_to["to"],
                       "type": "text", "text": {"preview_url": False, "body": part}}
            response = post_with_retries(json_request(url, payload, headers), channel=self.name,
                                         send=send, sleep=sleep, accept=_accepted)
            return str(json_field(response, "messages", 0, "id"))

        return send_parts(split_message(text, message_limit(binding, MAX_TEXT_CHARS)), send_one, self.name)


def _accepted(response: HttpResponse) -> str | None:
    return None if json_field(response, "messages", 0, "id") else "no message id in the answer"


def _timestamp(raw: object) -> float:
    try:
        return float(str(raw))
    except ValueError:
        return time.time()


ADAPTER = WhatsAppAdapter()
