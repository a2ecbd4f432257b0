"""An API turn: run it now through the turn gateway (runtime/gateway.py), or hand it to the queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from chalicelib.config.resolver import ConfigPosition
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.ids import new_id, now_s
from chalicelib.domain.session import SessionKey
from chalicelib.domain.turn import Outcome
from chalicelib.runtime.gateway import SYNC_TURN, Arrival, Skipped, run_turn
from chalicelib.runtime.queue_messages import TurnMessage
from chalicelib.runtime.queueing import queue_turn
from chalicelib.runtime.services import Services


@dataclass(frozen=True, slots=True)
class TurnInput:
    """One user message to answer (the API's TurnRequest, already validated)."""

    user_id: str
    message: str
    channel: ChannelName = ChannelName.API
    session_id: str | None = None  # None: the key's open session, opened if need be

    def as_json(self) -> dict[str, Any]:
        """What the idempotency record compares: a retried key with another message is refused."""
        return {"user_id": self.user_id, "channel": self.channel.value, "message": self.message,
                "session_id": self.session_id}


class TurnResult(BaseModel):
    """What a synchronous turn produced. A model: the idempotency store keeps it as JSON."""

    turn_id: str
    session_id: str
    interlocutor_id: str
    reply: str | None  # None while the session is handed off to a human (the agent stays silent)
    outcome: Outcome


def run_sync(svc: Services, tenant_id: str, agent_id: str, request: TurnInput) -> TurnResult:
    """Run one turn inside this invocation and answer with its reply and outcome (the gateway's
    SYNC_TURN policy).

    Raises NotFound for an unknown agent or a session that is not this tenant's and agent's, and
    Conflict when another turn of the session keeps the lock past the policy's wait, QuotaExceeded
    (429) past a monthly quota, after keeping the message. A warm turn makes three DynamoDB round
    trips: two batched reads under the session lock, and the commit.
    """
    from chalicelib.runtime.quota import refusal  # noqa: PLC0415 - with the pipeline, on the first turn

    # A named session is checked under the lock, with the turn's own reads (gateway.load_turn).
    key = _request_key(tenant_id, agent_id, request)
    done = run_turn(svc, Arrival(key=key, text=request.message, session_id=request.session_id), SYNC_TURN)
    if isinstance(done, Skipped):  # only a commit gate drops a turn, and a sync turn has none
        raise Conflict("the turn was not committed")
    if done.refused is not None:  # the message is kept in the session; the caller learns when to retry
        raise refusal(done.refused)
    return TurnResult(turn_id=done.turn_id, session_id=done.session.session_id,
                      interlocutor_id=done.session.interlocutor_id, reply=done.reply, outcome=done.outcome)


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A turn handed to the queue: its id and the session it will run in."""

    turn_id: str
    session_id: str


def enqueue(svc: Services, tenant_id: str, agent_id: str, request: TurnInput) -> Enqueued:
    """Queue the turn for the worker and answer at once. Raises NotFound as run_sync does.

    Read the reply with GET .../sessions/{session_id}/turns or .../messages. Messages of one
    session that wait together are answered by one turn, named by the first one's turn_id.
    """
    key = _owned_key(svc, tenant_id, agent_id, request)
    published = svc.agents.latest(tenant_id, agent_id).published
    if request.session_id is not None:
        session_id = request.session_id
    else:
        tenant_layer = svc.config_store.get_tenant_layer(tenant_id)
        at = ConfigPosition(channel=key.channel)
        idle_timeout_s = svc.resolver.for_turn(tenant_layer, published, at).config.session.idle_timeout_s
        interlocutor_id = svc.interlocutors.resolve(tenant_id, key.channel, key.user_id)
        session_id = svc.sessions.open(key, interlocutor_id, now_s(), idle_timeout_s).session_id
    turn_id = new_id("turn")
    queue_turn(svc, TurnMessage.of(key, message_id=new_id("msg"), text=request.message, received_at=now_s(),
                                   session_id=session_id, turn_id=turn_id))
    return Enqueued(turn_id=turn_id, session_id=session_id)


def _request_key(tenant_id: str, agent_id: str, request: TurnInput) -> SessionKey:
    """The session key of the request: a named session must be this key's (checked when it is read)."""
    return SessionKey(tenant_id=tenant_id, agent_id=agent_id, channel=request.channel.value, user_id=request.user_id)


def _owned_key(svc: Services, tenant_id: str, agent_id: str, request: TurnInput) -> SessionKey:
    """The request's session key, once a named session is known to be its own: a queued turn is
    checked before its 202, not when the worker runs it."""
    key = _request_key(tenant_id, agent_id, request)
    if request.session_id is not None:
        session = svc.sessions.get(tenant_id, request.session_id)
        if session is None or session.key != key:
            raise NotFound(f"session {request.session_id!r} not found")
    return key
