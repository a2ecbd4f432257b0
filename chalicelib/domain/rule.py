"""Rules: "when <condition>, then <action>", scoped global / scenario / step."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from chalicelib.domain.base import ItemId, Model


class Scope(StrEnum):
    GLOBAL = "global"
    SCENARIO = "scenario"
    STEP = "step"


class Rule(Model):
    id: ItemId
    name: str = ""
    condition: str = Field(min_length=1, description="when ... (natural language, used for retrieval)")
    action: str = Field(min_length=1, description="then ... (instruction; what the judge checks)")
    examples: list[str] = Field(default_factory=list, description="user phrasings; retrieval matches them too")
    scope: Scope = Scope.GLOBAL
    scenario: str | None = None
    step: str | None = None
    priority: int = Field(default=0, ge=-100, le=100)
    enabled: bool = True
    hard_constraint: bool = False
    expression: str | None = None
    templates: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    cooldown_turns: int = Field(default=0, ge=0)
    max_fires_per_session: int = Field(default=0, ge=0, description="0 = unlimited")
    depends_on: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)
    entails: list[str] = Field(default_factory=list)
    handoff: bool = Field(default=False, description="applying this rule hands the session to a human")

    @model_validator(mode="after")
    def _scope_has_its_target(self) -> Rule:
        if self.scope is Scope.SCENARIO and not self.scenario:
            raise ValueError("a scenario-scoped rule needs `scenario`")
        if self.scope is Scope.STEP and not (self.scenario and self.step):
            raise ValueError("a step-scoped rule needs `scenario` and `step`")
        return self

    @property
    def is_always_enforced(self) -> bool:
        """A global hard constraint applies to every turn, retrieved or not."""
        return self.hard_constraint and self.enabled and self.scope is Scope.GLOBAL
