"""An agent's sessions, and a session's audit trail (turn records) and transcript, for the tenant that owns it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.api.pagination import MAX_LIMIT, PageRequest, paginate
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.session import Session
from chalicelib.runtime.services import Services
from chalicelib.stores.ports import SessionFilter


def list_sessions(services: Services, tenant_id: str, agent_id: str, page: PageRequest,
                  where: SessionFilter) -> dict[str, Any]:
    """{"sessions": [summary, ...] newest first, "next_cursor"}: one Query of the session index.

    An agent id the tenant never used (or deleted) lists what its index holds: the sessions of a
    deleted agent stay readable, like their turn records.
    """
    found = services.session_index.list(tenant_id, agent_id, limit=page.limit, cursor=page.cursor, where=where)
    return {"sessions": [summary.to_json() for summary in found.items], "next_cursor": found.next_cursor}


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


def turns(
    services: Services, tenant_id: str, agent_id: str, session_id: str, page: PageRequest
) -> dict[str, Any]:
    """{"turns": [turn record, ...] newest last, "next_cursor"}. Raises NotFound."""
    _owned(services, tenant_id, agent_id, session_id)
    found = services.sessions.turns(tenant_id, session_id, limit=page.limit, cursor=page.cursor)
    return {"turns": [record.public_view() for record in found.items], "next_cursor": found.next_cursor}


def messages(
    services: Services, tenant_id: str, agent_id: str, session_id: str, after: str | None,
    *, page: PageRequest | None = None,
) -> dict[str, Any]:
    """{"messages": [{message_id, role, text, created_at}], "next_cursor"} oldest first, after
    `after` if given; `page` (?limit=, ?cursor=) pages what follows `after`."""
    _owned(services, tenant_id, agent_id, session_id)
    found = services.sessions.messages(tenant_id, session_id, after=after or None)
    found, next_cursor = paginate(found, page or PageRequest(limit=MAX_LIMIT, cursor=None))
    return {
        "next_cursor": next_cursor,
        "messages": [
            {
                "message_id": message.message_id,
                "role": message.role,
                "text": message.text,
                "created_at": message.created_at,
            }
            for message in found
        ]
    }


def _owned(services: Services, tenant_id: str, agent_id: str, session_id: str) -> Session:
    session = services.sessions.get(tenant_id, session_id)
    if session is None or session.key.agent_id != agent_id:
        raise NotFound("no such session", session_id=session_id)
    return session
