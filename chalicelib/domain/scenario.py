"""Scenarios: multi-step flows with required fields and conditional transitions."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from chalicelib.domain.base import ItemId, Model


class AnyOf(Model):
    """Satisfied by any one group: [[email], [name, zip]]."""

    any_of: list[list[str]] = Field(min_length=1)


RequiredField = str | AnyOf


class Transition(Model):
    to: str
    condition: str | None = None  # judged by the understanding call
    expression: str | None = None  # evaluated by the engine; taken when it holds

    @field_validator("expression")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class Step(Model):
    id: ItemId
    name: str = ""
    instruction: str = ""
    required_fields: list[RequiredField] = Field(default_factory=list)
    templates: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    terminal: bool = False
    handoff: bool = Field(default=False, description="reaching this step hands the session to a human")
    config: dict[str, Any] = Field(default_factory=dict)
    transitions: list[Transition] = Field(default_factory=list)

    def field_names(self) -> list[str]:
        names: list[str] = []
        for item in self.required_fields:
            groups = [[item]] if isinstance(item, str) else item.any_of
            names.extend(name for group in groups for name in group)
        return names


class Scenario(Model):
    id: ItemId
    name: str = ""
    condition: str = Field(min_length=1, description="when this scenario starts (natural language)")
    examples: list[str] = Field(default_factory=list, description="user phrasings; retrieval matches them too")
    entry_step: str
    config: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)

    def step(self, step_id: str) -> Step | None:
        return next((step for step in self.steps if step.id == step_id), None)
