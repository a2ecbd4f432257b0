"""Accepted messages waiting for their turn (stores/inbox.py keeps them in DynamoDB)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """One accepted inbound message, pending until the turn that answers it commits."""

    message_id: str
    text: str
    received_at: float  # epoch seconds; the order of the inbox
    turn_id: str | None = None  # the turn id an asynchronous API turn answered 202 with


@dataclass(frozen=True, slots=True)
class DedupeMark:
    """The provider's message id, marked seen in the same transaction as the inbox item."""

    channel: str
    provider_message_id: str
    ttl_s: int
