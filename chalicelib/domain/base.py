"""Shared pydantic base classes for the domain."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.ids import ID_PATTERN

ItemId = Annotated[str, Field(pattern=ID_PATTERN, description="letters, digits, _ . -; at most 64")]


class Model(BaseModel):
    """A strict model: unknown keys are an error, so a typo in a bundle never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, defer_build=True)
