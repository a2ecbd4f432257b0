"""Channel bindings: one tenant's connection of one agent to one messaging channel."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from chalicelib.domain.base import Model


class ChannelName(StrEnum):
    API = "api"
    TWILIO = "twilio"
    WHATSAPP = "whatsapp"
    SLACK = "slack"
    WEBCHAT = "webchat"


# The secrets each channel needs, under the providers' own names (API.md).
REQUIRED_SECRETS: dict[ChannelName, tuple[str, ...]] = {
    ChannelName.TWILIO: ("account_sid", "auth_token"),
    ChannelName.WHATSAPP: ("app_secret", "verify_token", "access_token", "phone_number_id"),
    ChannelName.SLACK: ("signing_secret", "bot_token"),
    ChannelName.WEBCHAT: ("token",),
}


class ChannelBinding(Model):
    binding_id: str
    tenant_id: str
    agent_id: str
    channel: ChannelName
    secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    api_base_url: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""
