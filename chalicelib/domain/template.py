"""Templates: fixed texts with {{ name }} placeholders, in three modes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property

from pydantic import Field, model_validator

from chalicelib.domain.base import ItemId, Model
from chalicelib.domain.rule import Scope

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")


class TemplateMode(StrEnum):
    SUGGEST = "suggest"  # guides generation
    EXCLUSIVE = "exclusive"  # is the reply: generation is skipped
    FALLBACK = "fallback"  # the safe reply when enforcement keeps failing


class Template(Model):
    id: ItemId
    mode: TemplateMode
    text: str = Field(min_length=1)
    scope: Scope = Scope.GLOBAL
    scenario: str | None = None
    step: str | None = None

    @model_validator(mode="after")
    def _scope_has_its_target(self) -> Template:
        if self.scope is Scope.SCENARIO and not self.scenario:
            raise ValueError("a scenario-scoped template needs `scenario`")
        if self.scope is Scope.STEP and not (self.scenario and self.step):
            raise ValueError("a step-scoped template needs `scenario` and `step`")
        return self

    @cached_property
    def variables_used(self) -> tuple[str, ...]:
        """Placeholder names in order of first use; `tools.lookup.status` names a tool result."""
        seen: dict[str, None] = {}
        for match in _PLACEHOLDER.finditer(self.text):
            seen.setdefault(match.group(1), None)
        return tuple(seen)

    def can_render(self, values: Mapping[str, object]) -> bool:
        return all(lookup(values, name) is not None for name in self.variables_used)

    def render(self, values: Mapping[str, object]) -> str:
        """Fill the placeholders. A list renders as "a, b, c"; a missing value renders empty."""

        def fill(match: re.Match[str]) -> str:
            return format_value(lookup(values, match.group(1)))

        return _PLACEHOLDER.sub(fill, self.text)


def lookup(values: Mapping[str, object], dotted: str) -> object:
    """`tools.lookup.status` walks nested mappings; a plain name is a plain key."""
    current: object = values
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def format_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(format_value(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
