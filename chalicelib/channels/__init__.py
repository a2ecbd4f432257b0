"""Messaging channels: one module per provider (verify signature, parse inbound, send outbound).

`adapter_for(channel)` is the delivery side's entry point: the sender of a channel name.
"""

from chalicelib.channels.registry import WEBHOOK_ADAPTERS, sender_for

adapter_for = sender_for

__all__ = ["WEBHOOK_ADAPTERS", "adapter_for", "sender_for"]
