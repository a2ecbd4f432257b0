"""Run a turn: the synchronous API path (lock, load, FOCAL, commit), or hand it to the queue."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from chalicelib.domain.bundle import PublishedBundle
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.ids import new_id, now_s
from chalicelib.domain.interlocutor import InterlocutorData
from chalicelib.domain.session import Session, SessionKey, SessionStatus, is_open
from chalicelib.domain.turn import Outcome
from chalicelib.runtime.log import turn_keys
from chalicelib.runtime.queueing import queue_turn
from chalicelib.runtime.services import Services
from chalicelib.stores.ports import SessionLock, TurnStart

# A sync turn waits this long for a running turn of its session (a queued one, say) to finish.
LOCK_WAIT_S = 25.0
LOCK_TTL_S = 90.0  # longer than any turn: a crashed owner's lock expires on its own


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


def run_sync(svc: Services, tenant_id: str, agent_id: str, request: TurnInput,
             idempotency_key: str | None = None) -> TurnResult:
    """Run one turn inside this invocation and answer with its reply and outcome.

    Raises NotFound for an unknown agent or a session that is not this tenant's and agent's, and
    Conflict when another turn of the session keeps the lock past LOCK_WAIT_S, QuotaExceeded (429)
    past a monthly quota, after keeping the message. A warm turn makes
    three DynamoDB round trips: two batched reads under the session lock, and the commit.
    """
    # The pipeline (and numpy with it) loads with the first turn, not at cold start (import budget).
    from chalicelib.runtime.execute import execute_turn  # noqa: PLC0415
    from chalicelib.runtime.quota import refusal  # noqa: PLC0415 - with the pipeline, for the same reason

    key = _session_key(svc, tenant_id, agent_id, request)
    with turn_keys(tenant_id=tenant_id, agent_id=agent_id), hold_session(svc.session_lock, key) as fence:
        start = svc.turn_reads.start(key)
        if start.latest_version is None:
            raise NotFound(f"agent {agent_id!r} not found")
        agent = svc.agents.version(tenant_id, agent_id, start.latest_version)
        session, data = open_session(svc, key, start, agent.published, request.session_id)
        done = execute_turn(svc, agent, session, request.message, channel=key.channel, fence=fence,
                            tenant_layer=start.tenant_layer, interlocutor=data, month=start.month)
    if done is None:  # only a commit gate drops a turn, and a sync turn has none: never superseded
        raise Conflict("the turn was not committed")
    if done.refused is not None:  # the message is kept in the session; the caller learns when to retry
        raise refusal(done.refused)
    return TurnResult(turn_id=done.turn_id, session_id=session.session_id, interlocutor_id=session.interlocutor_id,
                     reply=done.reply, outcome=done.outcome)


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
    key = _session_key(svc, tenant_id, agent_id, request)
    published = svc.agents.latest(tenant_id, agent_id).published
    if request.session_id is not None:
        session_id = request.session_id
    else:
        tenant_layer = svc.config_store.get_tenant_layer(tenant_id)
        idle_timeout_s = svc.resolver.for_turn(tenant_layer, published,
                                               channel=key.channel).config.session.idle_timeout_s
        interlocutor_id = svc.interlocutors.resolve(tenant_id, key.channel, key.user_id)
        session_id = svc.sessions.open(key, interlocutor_id, now_s(), idle_timeout_s).session_id
    turn_id = new_id("turn")
    queue_turn(svc, key, message_id=new_id("msg"), text=request.message, received_at=now_s(),
               session_id=session_id, turn_id=turn_id)
    return Enqueued(turn_id=turn_id, session_id=session_id)


def _session_key(svc: Services, tenant_id: str, agent_id: str, request: TurnInput) -> SessionKey:
    """The session key to lock: from the request, or from the named session (which must be ours)."""
    if request.session_id is None:
        return SessionKey(tenant_id=tenant_id, agent_id=agent_id, channel=request.channel.value,
                          user_id=request.user_id)
    session = svc.sessions.get(tenant_id, request.session_id)
    # A session belongs to one (agent, channel, user): naming someone else's is as good as unknown.
    if (session is None or session.key.agent_id != agent_id or session.key.user_id != request.user_id
            or session.key.channel != request.channel.value):
        raise NotFound(f"session {request.session_id!r} not found")
    return session.key


def open_session(svc: Services, key: SessionKey, start: TurnStart, published: PublishedBundle,
                  wanted: str | None) -> tuple[Session, InterlocutorData | None]:
    """The session this turn runs in (`wanted`, else the key's open one, opened if need be), with the
    interlocutor's live data when it was read with it. Shared by sync turns and the queue worker.

    Raises NotFound for a wanted session that does not exist, Conflict for one that has ended.
    """
    now = now_s()
    if wanted is not None and start.interlocutor_id is None:  # its interlocutor was erased meanwhile
        raise NotFound(f"session {wanted!r} not found")
    interlocutor_id = start.interlocutor_id or svc.interlocutors.resolve(key.tenant_id, key.channel, key.user_id)
    session_id = wanted or start.session_id
    session, data = (svc.turn_reads.session_and_data(key.tenant_id, session_id, interlocutor_id, now)
                     if session_id else (None, None))
    if wanted is not None:
        if session is None:
            raise NotFound(f"session {wanted!r} not found")
        if session.status is SessionStatus.ENDED:
            raise Conflict(f"session {wanted!r} has ended; send the turn without session_id to start a new one")
        return session, data
    idle_timeout_s = svc.resolver.for_turn(start.tenant_layer, published,
                                           channel=key.channel).config.session.idle_timeout_s
    if session is None or not is_open(session, now, idle_timeout_s):
        session = svc.sessions.open(key, interlocutor_id, now, idle_timeout_s)
    return session, data


@contextmanager
def hold_session(lock: SessionLock, key: SessionKey, *, wait_s: float = LOCK_WAIT_S,
                 ttl_s: float = LOCK_TTL_S) -> Iterator[int]:
    """Hold the session's lock for the block, yielding its fencing token for the commit; wait for a
    running turn to finish first."""
    name = f"session:{key.as_string()}"
    deadline = time.monotonic() + wait_s
    token = lock.acquire(name, ttl_s)
    while token is None:
        if time.monotonic() > deadline:
            raise Conflict("another turn of this session is still running; try again shortly")
        time.sleep(0.05)
        token = lock.acquire(name, ttl_s)
    try:
        yield token
    finally:
        lock.release(name, token)
