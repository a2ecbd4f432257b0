"""Interlocutor data: the one canonical model of what an agent knows about the person it talks to.

A field definition (per agent) says what may be stored and how it is validated; values are
versioned (ACTIVE / SUPERSEDED / EXPIRED) with their source and confidence; channel identities map
(tenant, channel, channel user id) to exactly one interlocutor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from chalicelib.domain import patterns
from chalicelib.domain.base import ItemId, Model


class FieldType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    EMAIL = "email"
    PHONE = "phone"
    ENUM = "enum"
    LIST = "list"


class FieldScope(StrEnum):
    PERSISTENT = "persistent"  # stored on the interlocutor, across sessions
    SESSION = "session"  # lives in the session only; never persisted


class ValueSource(StrEnum):
    USER = "user"  # stated by the user in a message
    TOOL = "tool"
    API = "api"
    INFERRED = "inferred"


class ValueStatus(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{5,20}[0-9]$")
_BOOL_WORDS = {"yes": True, "true": True, "y": True, "no": False, "false": False, "n": False}
MASK_OPEN, MASK_CLOSE = "‹", "›"


class FieldDefinition(Model):
    name: ItemId
    type: FieldType = FieldType.STRING
    description: str = ""
    pii: bool = False
    scope: FieldScope = FieldScope.PERSISTENT
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    values: list[str] | None = None
    sources: list[ValueSource] = Field(default_factory=lambda: [ValueSource.USER, ValueSource.TOOL, ValueSource.API])
    ttl_days: float | None = Field(default=None, gt=0)
    ask: str = Field(default="", description="how the agent asks for it, in the agent's own words")
    synonyms: dict[str, list[str]] = Field(
        default_factory=dict, description="value -> other ways users say it (enum and list values)")

    @model_validator(mode="after")
    def _consistent(self) -> FieldDefinition:
        if self.type is FieldType.ENUM and not self.values:
            raise ValueError("an enum field needs `values`")
        unknown = [key for key in self.synonyms if key not in (self.values or ())]
        if unknown:
            raise ValueError(f"`synonyms` names values the field does not have: {', '.join(unknown)}")
        if self.pattern is not None:
            try:
                patterns.compiled(self.pattern)
            except patterns.PatternError as exc:
                raise ValueError(f"`pattern` {exc}") from exc
        return self

    @property
    def mask(self) -> str:
        """What stands in for a PII value in turn records and logs: ‹email›."""
        return f"{MASK_OPEN}{self.name}{MASK_CLOSE}"

    def accepts_source(self, source: ValueSource) -> bool:
        return source is ValueSource.INFERRED or source in self.sources

    def coerce(self, raw: Any) -> Any:
        """Return the value in its canonical form, or raise ValueError saying what is wrong.

        The message never repeats the value: it may be PII and it lands in turn records.
        """
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise ValueError("is empty")
        if self.type is FieldType.LIST:
            items = raw if isinstance(raw, list) else [part.strip() for part in str(raw).split(",")]
            return [self._check_text(str(item).strip()) for item in items if str(item).strip()]
        return self._coerce_scalar(raw)

    def _coerce_scalar(self, raw: Any) -> Any:
        kind = self.type
        if kind is FieldType.BOOLEAN:
            if isinstance(raw, bool):
                return raw
            word = str(raw).strip().lower()
            if word not in _BOOL_WORDS:
                raise ValueError("is not yes or no")
            return _BOOL_WORDS[word]
        if kind in (FieldType.NUMBER, FieldType.INTEGER):
            return self._check_range(self._to_number(raw))
        text = str(raw).strip()
        if kind is FieldType.DATE:
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError as exc:
                raise ValueError("is not a date (YYYY-MM-DD)") from exc
        if kind is FieldType.EMAIL and not _EMAIL.match(text):
            raise ValueError("is not an email address")
        if kind is FieldType.PHONE:
            if not _PHONE.match(text):
                raise ValueError("is not a phone number")
            text = re.sub(r"[ ().-]", "", text)
        return self._check_text(text)

    def _to_number(self, raw: Any) -> float | int:
        if isinstance(raw, bool):
            raise ValueError("is not a number")
        try:
            number = float(str(raw).replace(",", "").strip())
        except ValueError as exc:
            raise ValueError("is not a number") from exc
        if self.type is FieldType.INTEGER:
            if not number.is_integer():
                raise ValueError("is not a whole number")
            return int(number)
        return number

    def _check_range(self, number: float | int) -> float | int:
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"is below the minimum {self.minimum:g}")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"is above the maximum {self.maximum:g}")
        return number

    def _check_text(self, text: str) -> str:
        if self.values is not None:
            by_fold = {value.casefold(): value for value in self.values}
            if text.casefold() not in by_fold:
                raise ValueError(f"is not one of {', '.join(self.values)}")
            text = by_fold[text.casefold()]
        if self.pattern is not None and not patterns.fullmatch(self.pattern, text):
            raise ValueError("does not match the field's pattern")
        return text


class FieldValue(Model):
    """One version of one field's value."""

    name: str
    value: Any
    version: int = Field(ge=1)
    status: ValueStatus = ValueStatus.ACTIVE
    source: ValueSource
    confidence: float = Field(default=1.0, ge=0, le=1)
    updated_at: str
    expires_at: float | None = None  # epoch seconds; expired values are never served

    def is_live(self, now_s: float) -> bool:
        return self.status is ValueStatus.ACTIVE and (self.expires_at is None or self.expires_at > now_s)


class ChannelIdentity(Model):
    channel: str
    user_id: str


class InterlocutorData(Model):
    """What is known of one interlocutor: the live value of each persistent field."""

    interlocutor_id: str
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    identities: list[ChannelIdentity] = Field(default_factory=list)

    def values(self) -> dict[str, Any]:
        return {name: field.value for name, field in self.fields.items()}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """A new value for one persistent field; the store supersedes the previous ACTIVE version."""

    name: str
    value: Any
    source: ValueSource
    confidence: float = 1.0
    ttl_days: float | None = None
