"""Twilio (SMS, and WhatsApp through Twilio): form-encoded webhooks, X-Twilio-Signature, Messages API.

The signature is base64(HMAC-SHA1(auth_token, url + each POST param name and value, sorted)), the
scheme of twilio.request_validator (implemented here: the SDK is a test dependency only). Like the
SDK, the URL is tried with and without its default port, since Twilio signs either form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from chalicelib.channels.base import (
    GUARDED_SEND,
    SEND_TIMEOUT_S,
    Handshake,
    Headers,
    InboundMessage,
    Parsed,
    api_url,
    basic_auth,
    json_field,
    message_limit,
    path_segment,
    post_with_retries,
    same_secret,
    send_parts,
    split_message,
)
from chalicelib.domain.channel import ChannelBinding
from chalicelib.domain.errors import BadSignature, InvalidInput
from chalicelib.providers.transport import HttpRequest, HttpResponse, Send

DEFAULT_API = "https://api.twilio.com"
MAX_BODY_CHARS = 1600  # Twilio's limit for one message body (it segments SMS itself)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signature(auth_token: str, url: str, params: Mapping[str, list[str]]) -> str:
    """X-Twilio-Signature of a POST to `url` with these form params."""
    payload = url + "".join(name + value for name in sorted(params) for value in sorted(set(params[name])))
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_forms(url: str) -> set[str]:
    """The URL as given, without its port, and with the scheme's default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    return {
        url,
        urlunsplit(parts._replace(netloc=host)),
        urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default_port}")),
    }


def _form(raw_body: bytes) -> dict[str, list[str]]:
    return parse_qs(raw_body.decode("utf-8", "replace"), keep_blank_values=True)


class TwilioAdapter:
    name = "twilio"
    ack = Handshake(200, EMPTY_TWIML, "text/xml")

    def verify(self, binding: ChannelBinding, headers: Headers, raw_body: bytes, url: str) -> None:
        given = headers.get("x-twilio-signature", "")
        token = binding.secrets.get("auth_token", "")
        params = _form(raw_body)
        valid = bool(given and token) and any(
            same_secret(signature(token, form, params), given) for form in _url_forms(url)
        )
        if not valid:
            raise BadSignature("the X-Twilio-Signature does not match")

    def parse(self, binding: ChannelBinding, headers: Headers, raw_body: bytes) -> Parsed:
        """One message per webhook; status callbacks and empty bodies (media only) are nothing to do."""
        form = {name: values[-1] for name, values in _form(raw_body).items()}
        sid, sender, text = form.get("MessageSid", ""), form.get("From", ""), form.get("Body", "").strip()
        if not (sid and sender and text):
            return []
        return [InboundMessage(
            channel=self.name, binding_id=binding.binding_id, provider_message_id=sid, user_id=sender,
            text=text, received_at=time.time(), reply_to={"to": sender, "from": form.get("To", "")},
        )]

    def send(self, binding: ChannelBinding, reply_to: Mapping[str, str], text: str, *,
             send: Send = GUARDED_SEND, sleep: Callable[[float], None] = time.sleep) -> list[str]:
        """POST each part to the Messages API (From: the number written to, else config `from`)."""
        sid, token = binding.secrets.get("account_sid", ""), binding.secrets.get("auth_token", "")
        sender = reply_to.get("from") or str(binding.config.get("from", ""))
        if not (sid and token and sender and reply_to.get("to")):
            raise InvalidInput.at("reply_to", "twilio needs account_sid, auth_token, to and from")
        url = api_url(binding, DEFAULT_API, f"/2010-04-01/Accounts/{path_segment(sid)}/Messages.json")
        headers = {"Authorization": basic_auth(sid, token), "Accept": "application/json",
                   "Content-Type": "application/x-www-form-urlencoded"}

        def send_one(part: str) -> str:
            body = urlencode({"To": reply_to["to"], "From": sender, "Body": part}).encode()
            request = HttpRequest("POST", url, headers, body, SEND_TIMEOUT_S)
            response = post_with_retries(request, channel=self.name, send=send, sleep=sleep, accept=_accepted)
            return str(json_field(response, "sid"))

        return send_parts(split_message(text, message_limit(binding, MAX_BODY_CHARS)), send_one, self.name)


def _accepted(response: HttpResponse) -> str | None:
    return None if json_field(response, "sid") else "no message sid in the answer"


ADAPTER = TwilioAdapter()
