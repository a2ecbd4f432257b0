"""Webchat: a browser posts with the binding's public token and a server-issued, signed visitor token.

The binding token only names the binding (it is embedded in the page, so it is public). A
visitor token `vt_<random>.<signature>` is the visitor's identity: the signature is an HMAC of the
random part under a key derived from a server secret, the binding id and the binding token, so
nobody can mint one or pass as another visitor. The random part is the visitor's user id. Replies
are not pushed: the browser polls the transcript, so delivery sends nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.channels.base import GUARDED_SEND, Handshake, Headers, same_secret
from chalicelib.domain.channel import ChannelBinding
from chalicelib.domain.errors import Forbidden, Unauthorized
from chalicelib.providers.transport import Send

_TOKEN = re.compile(r"^vt_([0-9a-f]{32})\.([0-9a-f]{64})$")


class WebchatPost(BaseModel):
    """Body of POST /v1/webhooks/webchat/{binding_id} (API.md)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    message: str = Field(min_length=1, max_length=20000)
    visitor_token: str | None = Field(default=None, max_length=200)
    client_message_id: str | None = Field(default=None, min_length=1, max_length=128)


def check_binding_token(binding: ChannelBinding, headers: Headers) -> None:
    """Raises Unauthorized unless `Authorization: Bearer <the binding's token>` (constant-time)."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    expected = binding.secrets.get("token", "")
    if scheme.lower() != "bearer" or not expected or not same_secret(expected, given.strip()):
        raise Unauthorized("a webchat call needs the binding's token as a bearer token")


def issue_visitor_token(binding: ChannelBinding, server_secret: bytes) -> str:
    """A new, unguessable visitor identity for this binding."""
    visitor = secrets.token_hex(16)
    return f"vt_{visitor}.{_sign(binding, server_secret, visitor)}"


def visitor_of(binding: ChannelBinding, token: str, server_secret: bytes) -> str:
    """The visitor id inside a token this server issued for this binding. Raises Forbidden."""
    match = _TOKEN.match(token or "")
    if match is None or not same_secret(_sign(binding, server_secret, match[1]), match[2]):
        raise Forbidden("the visitor token is not valid for this binding")
    return match[1]


def _sign(binding: ChannelBinding, server_secret: bytes, visitor: str) -> str:
    # The key binds the server secret (never public) to this binding and its current token, so a
    # token rotation also revokes every visitor token issued under the old one.
    material = f"ruche-webchat-visitor|{binding.binding_id}|{binding.secrets.get('token', '')}".encode()
    key = hmac.new(server_secret, material, hashlib.sha256).digest()
    return hmac.new(key, visitor.encode(), hashlib.sha256).hexdigest()


class WebchatSender:
    """Delivery for webchat: nothing to send, the reply is in the transcript the page polls."""

    name = "webchat"
    ack = Handshake(202, "", "application/json")

    def send(self, binding: ChannelBinding, reply_to: Mapping[str, str], text: str, *,
             send: Send = GUARDED_SEND, sleep: Callable[[float], None] = time.sleep) -> list[str]:
        return []


SENDER = WebchatSender()
