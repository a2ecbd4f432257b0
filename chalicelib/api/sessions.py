"""An agent's sessions, and a session's audit trail (turn records) and transcript, for the tenant that owns it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.api.pagination import MAX_LIMIT, PageRequest, paginate
from chalicelib.api.views import MessagePage, SessionPage, TurnPage
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.session import Session
from chalicelib.runtime.services import Services
from chalicelib.stores.ports import SessionFilter


@dataclass(frozen=True, slots=True)
class SessionRef:
    """The session a route names, with the tenant and agent it must belong to (else 404)."""

    tenant_id: str
    agent_id: str
    session_id: str


def list_sessions(services: Services, tenant_id: str, agent_id: str, page: PageRequest,
                  where: SessionFilter) -> SessionPage:
    """The agent's sessions newest first: one Query of the session index.

    An agent id the tenant never used (or deleted) lists what its index holds: the sessions of a
    deleted agent stay readable, like their turn records.
    """
    found = services.session_index.list(tenant_id, agent_id, limit=page.limit, cursor=page.cursor, where=where)
    return SessionPage.of(found.items, found.next_cursor)


def session_filter(query: Mapping[str, str] | None) -> SessionFilter:
    """?fallback=true|false, ?handoff=true|false, ?scenario=ID; absent means either. Raises InvalidInput."""
    query = query or {}

    def flag(name: str) -> bool | None:
        value = query.get(name)
        if value is None or value == "":
            return None
        if value not in ("true", "false"):
            raise InvalidInput.at(name, "must be true or false")
        return value == "true"

    return SessionFilter(fallback=flag("fallback"), handoff=flag("handoff"), scenario=query.get("scenario") or None)


def turns(services: Services, ref: SessionRef, page: PageRequest) -> TurnPage:
    """The turn records, newest last. Raises NotFound."""
    _owned(services, ref)
    found = services.sessions.turns(ref.tenant_id, ref.session_id, limit=page.limit, cursor=page.cursor)
    return TurnPage(turns=found.items, next_cursor=found.next_cursor)


def messages(
    services: Services, ref: SessionRef, after: str | None, page: PageRequest | None = None
) -> MessagePage:
    """The transcript oldest first, after `after` if given; `page` (?limit=, ?cursor=) pages what
    follows `after`. Raises NotFound."""
    _owned(services, ref)
    found = services.sessions.messages(ref.tenant_id, ref.session_id, after=after or None)
    found, next_cursor = paginate(found, page or PageRequest(limit=MAX_LIMIT, cursor=None))
    return MessagePage.of(found, next_cursor)


def _owned(services: Services, ref: SessionRef) -> Session:
    session = services.sessions.get(ref.tenant_id, ref.session_id)
    if session is None or session.key.agent_id != ref.agent_id:
        raise NotFound("no such session", session_id=ref.session_id)
    return session
