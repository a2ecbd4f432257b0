"""Deliver a committed turn's reply through its channel, at most once per turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.channels import adapter_for
from chalicelib.domain.errors import RucheError
from chalicelib.domain.session import SessionKey
from chalicelib.providers.tracing import traced
from chalicelib.providers.transport import guarded_send
from chalicelib.runtime.events import emit_event
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services

DELIVERY_KEY_TTL_S = 7 * 86_400
# Channels whose replies are read back by the client (transcript polling, the API's answer).
_PULLED = frozenset({"api", "webchat"})


def pushes_replies(channel: str) -> bool:
    """True when the channel's replies are sent to the provider (not read back by the client)."""
    return channel not in _PULLED


@dataclass(frozen=True, slots=True)
class ReplyRoute:
    """Where a pushed reply goes: the session's channel user, through the binding the message came by."""

    key: SessionKey
    binding_id: str
    reply_to: dict[str, Any] = field(default_factory=dict)  # what the adapter needs to answer (thread, number)


def deliver_reply(svc: Services, route: ReplyRoute, turn_id: str, reply: str) -> bool:
    """Send the reply once. False when nothing was sent: pulled channel, already sent, or failed."""
    key, binding_id = route.key, route.binding_id
    if key.channel in _PULLED:
        return False
    if not svc.dedupe.first_sighting(key.tenant_id, "delivery", turn_id, DELIVERY_KEY_TTL_S):
        logger.info("reply already delivered for this turn: not sent again")
        return False
    binding = svc.bindings.get(binding_id)
    if binding is None or binding.tenant_id != key.tenant_id:
        logger.warning("binding gone before delivery: reply not sent")
        return False
    try:
        # The one guarded transport: the api_base_url and each connection's peer are judged at send time.
        send = guarded_send(svc.platform_config.network.allow_private)
        with traced("channel", channel=binding.channel):
            adapter_for(binding.channel).send(binding, route.reply_to, reply, send=send)
    except RucheError as exc:
        logger.warning("reply delivery failed", extra={"error_code": exc.code, "channel": key.channel})
        emit_event(svc, key.tenant_id, "delivery_failed",
                   {"turn_id": turn_id, "channel": key.channel, "binding_id": binding_id, "error_code": exc.code})
        return False
    logger.info("reply delivered", extra={"channel": key.channel})
    return True
