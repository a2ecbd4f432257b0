"""Interlocutor data through the API: read persistent fields, set them (validated), erase everything.

The interlocutor belongs to the tenant; the agent in the path supplies the field definitions that
validate a PATCH and decides which fields a GET shows (its persistent ones). Values set here have
source `api`, so only fields whose `sources` include `api` accept them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.ids import now_s
from chalicelib.domain.interlocutor import (
    ChannelIdentity,
    FieldChange,
    FieldScope,
    FieldValue,
    InterlocutorData,
    ValueSource,
)
from chalicelib.domain.session import SessionKey
from chalicelib.runtime.agents import load
from chalicelib.runtime.services import Services


@dataclass(frozen=True, slots=True)
class InterlocutorRead:
    """What one agent may show of an interlocutor: only the fields it defines as persistent (another
    agent of the tenant may keep fields this one has no business showing)."""

    interlocutor_id: str
    fields: dict[str, FieldValue]  # live values, by name
    identities: list[ChannelIdentity]
    history: list[FieldValue] | None = None  # every stored version, when asked for


def get(
    services: Services, tenant_id: str, agent_id: str, interlocutor_id: str, *, history: bool = False
) -> InterlocutorRead:
    """The persistent fields and identities (and, on request, the values' history). Raises NotFound
    for an unknown agent or interlocutor."""
    bundle = load(services, tenant_id, agent_id).bundle
    data = _load(services, tenant_id, interlocutor_id)
    persistent = {field.name for field in bundle.fields if field.scope is FieldScope.PERSISTENT}
    past = None
    if history:
        past = [value for value in services.interlocutors.history(tenant_id, interlocutor_id)
                if value.name in persistent]
    return InterlocutorRead(
        interlocutor_id=data.interlocutor_id,
        fields={name: value for name, value in sorted(data.fields.items()) if name in persistent},
        identities=list(data.identities),
        history=past,
    )


def patch(
    services: Services, tenant_id: str, agent_id: str, interlocutor_id: str, fields: Mapping[str, Any]
) -> InterlocutorRead:
    """Set persistent fields from the API and return the new view.

    Raises InvalidInput listing every rejected field at `fields.<name>` (unknown, session-scoped,
    not settable by the API, or an invalid value; messages never repeat the value), NotFound.
    """
    bundle = load(services, tenant_id, agent_id).bundle
    _load(services, tenant_id, interlocutor_id)
    problems: list[tuple[str, str]] = []
    changes: list[FieldChange] = []
    for name, raw in fields.items():
        path = f"fields.{name}"
        definition = bundle.field(name)
        if definition is None:
            problems.append((path, "unknown field"))
        elif definition.scope is FieldScope.SESSION:
            problems.append((path, "a session-scoped field cannot be set through the API"))
        elif not definition.accepts_source(ValueSource.API):
            problems.append((path, "this field's sources do not include api"))
        else:
            try:
                value = definition.coerce(raw)
            except ValueError as exc:
                problems.append((path, str(exc)))
            else:
                changes.append(
                    FieldChange(name=name, value=value, source=ValueSource.API, ttl_days=definition.ttl_days)
                )
    if problems:
        raise InvalidInput.many(problems)
    if changes:
        services.interlocutors.write(tenant_id, interlocutor_id, changes, now_s())
    return get(services, tenant_id, agent_id, interlocutor_id)


def erase(services: Services, tenant_id: str, agent_id: str, interlocutor_id: str) -> None:
    """Erase the interlocutor (values, identities, transcripts, turn records, the stored answers of
    its Idempotency-Key turns, the messages it sent that still wait for a turn). Raises NotFound."""
    load(services, tenant_id, agent_id)
    # What needs its identities or its index goes first, while the interlocutor still lists them.
    services.idempotency_index.erase_interlocutor(tenant_id, interlocutor_id)
    data = services.interlocutors.load(tenant_id, interlocutor_id, now_s())
    if data is not None:
        _drop_pending(services, tenant_id, data.identities)
    if not services.interlocutors.erase(tenant_id, interlocutor_id):
        raise NotFound("no such interlocutor", interlocutor_id=interlocutor_id)


def _drop_pending(services: Services, tenant_id: str, identities: list[ChannelIdentity]) -> None:
    """Messages still in an inbox hold what the person said: they are dropped unanswered. A session
    key is (agent, channel, user), so its identities on each live agent name every inbox it may
    have; a deleted agent's pending messages are dropped by the worker, which finds no agent."""
    for agent_id, _ in services.bundles.list_agents(tenant_id):
        for identity in identities:
            key = SessionKey(tenant_id=tenant_id, agent_id=agent_id, channel=identity.channel,
                             user_id=identity.user_id)
            pending = services.inbox.pending(key)
            if pending:
                services.inbox.discard(key, [message.message_id for message in pending])


def _load(services: Services, tenant_id: str, interlocutor_id: str) -> InterlocutorData:
    data = services.interlocutors.load(tenant_id, interlocutor_id, now_s())
    if data is None:
        raise NotFound("no such interlocutor", interlocutor_id=interlocutor_id)
    return data

