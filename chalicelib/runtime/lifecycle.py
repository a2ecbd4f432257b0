"""Session lifecycle outside a turn: resume after a handoff, end, and the idle timeout of new turns.

- resume: a HANDOFF session goes back to ACTIVE, so the agent speaks again on the next turn;
- end: the session is ENDED; the next turn of that user opens a new session (SessionStore.open
  never reopens an ended session);
- idle: turns.py resolves `session.idle_timeout_s` (tenant + agent + channel layers) and passes it
  to SessionStore.open, which opens a new session when the open one sat idle longer.

Both changes take the session lock, so they never interleave with a running turn; the save is
version-checked as well.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.ids import now_iso
from chalicelib.domain.session import Session, SessionStatus
from chalicelib.runtime.gateway import hold_session
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services


def resume(svc: Services, tenant_id: str, agent_id: str, session_id: str) -> Session:
    """Hand a session back to the agent: HANDOFF -> ACTIVE; the session as it now stands.

    Resuming an ACTIVE session changes nothing. Raises NotFound (unknown, another tenant's or
    another agent's session) and Conflict for an ENDED session.
    """
    def change(session: Session) -> SessionStatus | None:
        if session.status is SessionStatus.ENDED:
            raise Conflict("an ended session cannot be resumed", session_id=session.session_id)
        return SessionStatus.ACTIVE if session.status is SessionStatus.HANDOFF else None

    return _change_status(svc, tenant_id, agent_id, session_id, change)


def end(svc: Services, tenant_id: str, agent_id: str, session_id: str) -> Session:
    """Close a session (the session, now ENDED); ending it twice changes nothing.

    Raises NotFound (unknown, another tenant's or another agent's session).
    """
    def change(session: Session) -> SessionStatus | None:
        return None if session.status is SessionStatus.ENDED else SessionStatus.ENDED

    return _change_status(svc, tenant_id, agent_id, session_id, change)


def _change_status(svc: Services, tenant_id: str, agent_id: str, session_id: str,
                   change: Callable[[Session], SessionStatus | None]) -> Session:
    session = _owned(svc, tenant_id, agent_id, session_id)
    with hold_session(svc.session_lock, session.key):
        current = _owned(svc, tenant_id, agent_id, session_id)  # fresh, under the lock
        status = change(current)
        if status is not None:
            updated = current.model_copy(update={"status": status, "updated_at": now_iso()})
            svc.sessions.save(updated, expected_version=current.version)
            logger.info("session status changed", extra={
                "tenant_id": tenant_id, "session_id": session_id, "status": status.value,
            })
            current = updated
    return current


def _owned(svc: Services, tenant_id: str, agent_id: str, session_id: str) -> Session:
    session = svc.sessions.get(tenant_id, session_id)
    if session is None or session.key.agent_id != agent_id:
        raise NotFound("no such session", session_id=session_id)
    return session
