"""Bindings for channel tests: one per provider, pointed at a local stand-in server when given."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.channel import ChannelBinding, ChannelName

SECRETS: dict[ChannelName, dict[str, str]] = {
    ChannelName.TWILIO: {"account_sid": "AC123", "auth_token": "twilio-token"},
    ChannelName.WHATSAPP: {"app_secret": "meta-app-secret", "verify_token": "verify-me",
                           "access_token": "EAAG-token", "phone_number_id": "1055"},
    ChannelName.SLACK: {"signing_secret": "slack-signing-secret", "bot_token": "xoxb-bot"},
    ChannelName.WEBCHAT: {"token": "wc-public-token"},
}


def a_binding(kind: ChannelName, api_base_url: str | None = None, **config: Any) -> ChannelBinding:
    return ChannelBinding(binding_id=f"bnd_{kind.value}", tenant_id="t1", agent_id="support", channel=kind,
                          secrets=dict(SECRETS[kind]), api_base_url=api_base_url, config=config)
