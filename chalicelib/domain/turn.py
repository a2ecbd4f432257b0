"""Turn records: the audit trail that explains every reply (API.md, "Turns")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from chalicelib.domain.base import Model
from chalicelib.domain.interlocutor import FieldChange
from chalicelib.domain.session import Session


class Violation(Model):
    rule_id: str
    message: str
    lane: str = "expression"  # expression | judge


class Attempt(Model):
    reply: str
    violations: list[Violation] = Field(default_factory=list)
    not_applicable: list[str] = Field(default_factory=list)  # rule ids whose check had no data


class ToolCall(Model):
    tool_id: str
    status: str  # ok | error | timeout | skipped_guard | awaiting_confirmation | superseded
    idempotency_key: str
    attempts: int = 1
    latency_ms: float = 0.0
    error: str = ""


class RuleTrace(Model):
    rule_id: str
    score: float
    selected: bool
    reason: str


class ScenarioTrace(Model):
    action: str  # none | start | continue | transition | exit | complete
    scenario_id: str | None = None
    from_step: str | None = None
    to_step: str | None = None
    path: list[str] = Field(default_factory=list)
    missing_fields: list[str] = Field(default_factory=list)


class ScenarioPosition(Model):
    id: str
    step: str


class Outcome(Model):
    rules: list[str] = Field(default_factory=list)
    scenario: ScenarioPosition | None = None
    regeneration_attempts: int = 0
    fallback_used: bool = False
    llm_calls: int = 0
    handoff: bool = False


class TurnRecord(Model):
    turn_id: str
    session_id: str
    tenant_id: str
    agent_id: str
    agent_version: int
    interlocutor_id: str
    turn_number: int
    channel: str
    message: str  # PII values masked
    reply: str  # PII values masked
    outcome: Outcome
    attempts: list[Attempt] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    retrieved: list[RuleTrace] = Field(default_factory=list)
    scenario_trace: ScenarioTrace | None = None
    fields_extracted: dict[str, str] = Field(default_factory=dict)  # name -> "stored" | masked value
    fields_rejected: dict[str, str] = Field(default_factory=dict)  # name -> reason (never the value)
    fallback_template_id: str | None = None
    fallback_reason: str = ""
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings_ms: dict[str, float] = Field(default_factory=dict)
    config_version: str = ""
    created_at: str = ""
    # answered: FOCAL ran; silent: the session is handed off to a human; refused: over the quota.
    kind: Literal["answered", "silent", "refused"] = "answered"


@dataclass(frozen=True, slots=True)
class TranscriptMessage:
    message_id: str
    role: str  # user | agent
    text: str
    created_at: str


@dataclass(frozen=True, slots=True)
class TurnCommit:
    """Everything a turn writes, committed in one TransactWriteItems (DESIGN.md §4)."""

    session: Session  # the new state; its version is expected_version + 1
    expected_version: int
    record: TurnRecord
    field_changes: list[FieldChange] = field(default_factory=list)
    transcript: list[TranscriptMessage] = field(default_factory=list)
    now_s: float = 0.0
    # The field versions read with the turn's data (FieldValue.version); None: the store reads them.
    # A stale guess costs nothing but a retry: the supersede conditions catch it.
    field_heads: dict[str, int] | None = None
    # The inbox message ids this turn answers: they leave the inbox in this same transaction, on
    # the condition that they are still there (a redelivered turn commits nothing).
    answered: tuple[str, ...] = ()
    # The fencing token of the session lock the turn ran under: the commit is refused when a turn
    # holding a higher token committed first (its lock expired and was taken over). None: no lock
    # was held, nothing is checked.
    fence: int | None = None


@dataclass(frozen=True, slots=True)
class CommittedTurn:
    """Where a committed turn lives, found by its turn id (the commit's turn marker)."""

    session_id: str
    turn_number: int
