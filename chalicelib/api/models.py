"""Request and response bodies of the agent, interlocutor and turn routes (API.md), as pydantic models.

The HTTP shapes live here, at the edge: handlers validate a body into one of these, call the
gateway (chalicelib/runtime) with plain domain values, and answer with a view built from what it
returns. The gateway never sees these classes (an import-linter contract), so the queue worker and
the webhooks share its functions without depending on HTTP. The admin, channel and event-endpoint
bodies live with their own handlers (api/admin.py, api/channels.py, api/event_endpoints.py); the
answers of those routes, and of the session, interlocutor and list routes, are in api/views.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.channel import ChannelName
from chalicelib.domain.turn import Outcome
from chalicelib.runtime.turns import Enqueued, TurnInput, TurnResult


class TurnRequest(BaseModel):
    """Body of POST /v1/agents/{agent_id}/turns."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    user_id: str = Field(min_length=1, max_length=256)
    channel: ChannelName = ChannelName.API
    message: str = Field(min_length=1, max_length=20000)
    session_id: str | None = None

    def to_input(self) -> TurnInput:
        return TurnInput(user_id=self.user_id, message=self.message, channel=self.channel,
                         session_id=self.session_id)


class TurnReply(BaseModel):
    """200 answer of POST .../turns: the turn ran in this request."""

    turn_id: str
    session_id: str
    interlocutor_id: str
    reply: str | None  # None while the session is handed off to a human (the agent stays silent)
    outcome: Outcome

    @classmethod
    def of(cls, result: TurnResult) -> TurnReply:
        return cls.model_validate(result.model_dump())


class QueuedTurn(BaseModel):
    """202 answer of POST .../turns?async=true: the turn runs from the queue."""

    turn_id: str
    session_id: str

    @classmethod
    def of(cls, queued: Enqueued) -> QueuedTurn:
        return cls(turn_id=queued.turn_id, session_id=queued.session_id)


class RollbackRequest(BaseModel):
    """Body of POST /v1/agents/{agent_id}/rollback."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)


class InterlocutorPatch(BaseModel):
    """Body of PATCH /v1/agents/{agent_id}/interlocutors/{interlocutor_id}."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    fields: dict[str, Any]


class AgentVersion(BaseModel):
    """Answer of every change to an agent (publish, rollback, item edit); its ETag is the version."""

    agent_id: str
    version: int
