"""Sessions: one conversation of one interlocutor with one agent on one channel."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import Field

from chalicelib.domain.base import Model


class SessionStatus(StrEnum):
    ACTIVE = "active"
    HANDOFF = "handoff"  # a human has the conversation; the agent stays silent until resumed
    ENDED = "ended"


class SessionKey(Model):
    """At most one turn of a session key is in flight (DESIGN.md §3)."""

    tenant_id: str
    agent_id: str
    channel: str
    user_id: str

    def as_string(self) -> str:
        return f"{self.tenant_id}|{self.agent_id}|{self.channel}|{self.user_id}"


class RuleUsage(Model):
    fires: int = 0
    last_turn: int = 0


class ScenarioState(Model):
    scenario_id: str
    step_id: str
    entered_turn: int = 0


class PendingConfirmation(Model):
    """An irreversible tool call the agent asked the user to confirm in its last reply."""

    tool_id: str
    inputs: dict[str, Any]


class Session(Model):
    session_id: str
    key: SessionKey
    interlocutor_id: str
    status: SessionStatus = SessionStatus.ACTIVE
    version: int = 0  # bumped by every committed turn; the commit checks it
    # The highest session-lock fencing token a turn committed under (0: none yet): a turn holding a
    # lower token lost its lock to a newer turn, and the commit refuses it (stores/dynamo_sessions.py).
    fence: int = 0
    turn_count: int = 0
    scenario: ScenarioState | None = None
    rule_usage: dict[str, RuleUsage] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)  # session-scoped field values
    pending_confirmation: PendingConfirmation | None = None
    history: list[dict[str, str]] = Field(default_factory=list)  # recent {"role", "text"}, masked
    created_at: str = ""
    updated_at: str = ""
    last_activity_s: float = 0.0


def session_key_hash(key: SessionKey) -> str:
    """The stable hash naming a session key's pointer partition (no user id in a partition key)."""
    return hashlib.sha256(key.as_string().encode()).hexdigest()[:32]


def is_open(session: Session, now_s: float, idle_timeout_s: float) -> bool:
    """Neither ended nor idle longer than the timeout: a new message continues it."""
    return session.status is not SessionStatus.ENDED and now_s - session.last_activity_s <= idle_timeout_s
