"""Update interlocutor data: validate the values stated this turn against the field schema.

Persistent fields become FieldChanges (written at commit, superseding the previous version);
session-scoped fields go to the session's values and are never persisted. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.interlocutor import FieldChange, FieldDefinition, FieldScope, InterlocutorData, ValueSource
from chalicelib.focal.types import DataUpdate


@dataclass(frozen=True, slots=True)
class Origin:
    """Where stated values come from and how sure their reading is: stored with every change, and
    a field refuses values from a source it does not accept."""

    source: ValueSource = ValueSource.USER
    confidence: float = 1.0


def update_interlocutor_data(stated: Mapping[str, Any], fields: Sequence[FieldDefinition],
                             interlocutor: InterlocutorData, session_values: Mapping[str, Any],
                             origin: Origin = Origin()) -> DataUpdate:
    """Validate each stated value; return what to write, the new session values and what was rejected.

    Values equal to the current one are not rewritten (no new version). A rejection reason never
    repeats the value (it may be PII and lands in turn records): "unknown field", "source not
    accepted", or the field's validation message. `None` means "not stated" and is skipped.
    """
    by_name = {field.name: field for field in fields}
    source = origin.source
    persistent = interlocutor.values()
    session = dict(session_values)
    changes: list[FieldChange] = []
    accepted: list[str] = []
    rejected: dict[str, str] = {}
    replaced: dict[str, Any] = {}  # still masked in this turn's texts: "not a@x.com, b@y.com"
    for name, raw in stated.items():
        if raw is None:
            continue
        field = by_name.get(name)
        if field is None:
            rejected[name] = "unknown field"
            continue
        if not field.accepts_source(source):
            rejected[name] = f"source {source.value} not accepted"
            continue
        try:
            value = field.coerce(raw)
        except ValueError as exc:
            rejected[name] = str(exc)
            continue
        if field.scope is FieldScope.SESSION:
            if session.get(name) != value:
                if session.get(name) is not None:
                    replaced[name] = session[name]
                session[name] = value
                accepted.append(name)
        elif persistent.get(name) != value:
            if persistent.get(name) is not None:
                replaced[name] = persistent[name]
            changes.append(FieldChange(name=name, value=value, source=source, confidence=origin.confidence,
                                       ttl_days=field.ttl_days))
            accepted.append(name)
    known = {**persistent, **session, **{change.name: change.value for change in changes}}
    return DataUpdate(known=known, changes=tuple(changes), session_values=session, accepted=tuple(accepted),
                      rejected=rejected, replaced=replaced)
