"""Interlocutor data through the API: read persistent fields, set them (validated), erase everything.

The interlocutor belongs to the tenant; the agent in the path supplies the field definitions that
validate a PATCH and decides which fields a GET shows (its persistent ones). Values set here have
source `api`, so only fields whose `sources` include `api` accept them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.ids import now_s
from chalicelib.domain.interlocutor import FieldChange, FieldScope, FieldValue, InterlocutorData, ValueSource
from chalicelib.runtime.agents import load
from chalicelib.runtime.services import Services


class InterlocutorPatch(BaseModel):
    """Body of PATCH /v1/agents/{agent_id}/interlocutors/{interlocutor_id}."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    fields: dict[str, Any]


def get(
    services: Services, tenant_id: str, agent_id: str, interlocutor_id: str, *, history: bool = False
) -> dict[str, Any]:
    """{"interlocutor_id", "fields": {name: {value, source, status, updated_at}}, "identities"}
    (+ "history" on request). Raises NotFound for an unknown agent or interlocutor."""
    bundle = load(services, tenant_id, agent_id).bundle
    data = _load(services, tenant_id, interlocutor_id)
    persistent = {field.name for field in bundle.fields if field.scope is FieldScope.PERSISTENT}
    view: dict[str, Any] = {
        "interlocutor_id": data.interlocutor_id,
        "fields": {
            name: _value_view(value) for name, value in sorted(data.fields.items()) if name in persistent
        },
        "identities": [identity.model_dump(mode="json") for identity in data.identities],
    }
    if history:
        past = services.interlocutors.history(tenant_id, interlocutor_id)
        view["history"] = [
            {"name": value.name, "version": value.version, **_value_view(value)}
            for value in past
            if value.name in persistent
        ]
    return view


def patch(
    services: Services, tenant_id: str, agent_id: str, interlocutor_id: str, body: InterlocutorPatch
) -> dict[str, Any]:
    """Set persistent fields from the API and return the new view.

    Raises InvalidInput listing every rejected field at `fields.<name>` (unknown, session-scoped,
    not settable by the API, or an invalid value; messages never repeat the value), NotFound.
    """
    bundle = load(services, tenant_id, agent_id).bundle
    _load(services, tenant_id, interlocutor_id)
    problems: list[tuple[str, str]] = []
    changes: list[FieldChange] = []
    for name, raw in body.fields.items():
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
    its Idempotency-Key turns). Raises NotFound."""
    load(services, tenant_id, agent_id)
    # First the stored answers of its Idempotency-Key turns, while the interlocutor still lists them.
    services.idempotency_index.erase_interlocutor(tenant_id, interlocutor_id)
    if not services.interlocutors.erase(tenant_id, interlocutor_id):
        raise NotFound("no such interlocutor", interlocutor_id=interlocutor_id)


def _load(services: Services, tenant_id: str, interlocutor_id: str) -> InterlocutorData:
    data = services.interlocutors.load(tenant_id, interlocutor_id, now_s())
    if data is None:
        raise NotFound("no such interlocutor", interlocutor_id=interlocutor_id)
    return data


def _value_view(value: FieldValue) -> dict[str, Any]:
    return {
        "value": value.value,
        "source": value.source.value,
        "status": value.status.value,
        "updated_at": value.updated_at,
    }
