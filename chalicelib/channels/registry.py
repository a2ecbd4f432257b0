"""Which adapter speaks for which channel name: webhook adapters and delivery senders."""

from __future__ import annotations

from chalicelib.channels import slack, twilio, webchat, whatsapp
from chalicelib.channels.base import ChannelAdapter, ChannelSender
from chalicelib.domain.errors import NotFound

# Channels whose webhooks are signed by a provider (webchat has its own token scheme).
WEBHOOK_ADAPTERS: dict[str, ChannelAdapter] = {
    twilio.ADAPTER.name: twilio.ADAPTER,
    whatsapp.ADAPTER.name: whatsapp.ADAPTER,
    slack.ADAPTER.name: slack.ADAPTER,
}

SENDERS: dict[str, ChannelSender] = {**WEBHOOK_ADAPTERS, webchat.SENDER.name: webchat.SENDER}


def sender_for(channel: str) -> ChannelSender:
    """The sender of a channel name. Raises NotFound for a channel with no delivery (e.g. api)."""
    try:
        return SENDERS[channel]
    except KeyError as exc:
        raise NotFound(f"no delivery for channel {channel!r}") from exc
