"""Tools: HTTP calls an agent may make during a turn."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from chalicelib.domain.base import ItemId, Model


def resolve_url(url: str, base_url: str | None) -> str | None:
    """An absolute url as written; a relative one appended to `base_url` (None without one).

    Appended, not joined: a base with a path (https://api.example.com/v2) keeps its path.
    """
    if "://" in url:
        return url
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/{url.lstrip('/')}"


class SideEffect(StrEnum):
    PURE = "pure"  # reads only; safe to retry and to run on a superseded turn
    IDEMPOTENT = "idempotent"  # writes, but the idempotency key makes a retry harmless
    IRREVERSIBLE = "irreversible"  # guarded, confirmed, and never superseded once run


class Tool(Model):
    id: ItemId
    description: str = ""
    side_effect: SideEffect = SideEffect.PURE
    timeout_s: float | None = Field(default=None, gt=0, le=30, description="default: tools.timeout_s")
    retries: int | None = Field(default=None, ge=0, le=5, description="default: tools.max_retries")
    url: str = Field(min_length=1, description="POSTed a JSON body of the inputs; a relative url "
                                               "(/tools/x) is appended to the config's tools.base_url")
    inputs: list[str] | dict[str, str] = Field(default_factory=list)
    outputs: dict[str, str] = Field(default_factory=dict, description="result key -> field name")
    guard: str | None = None
    confirm: bool = False

    @property
    def input_map(self) -> dict[str, str]:
        """argument name -> field name, whichever form `inputs` was written in."""
        if isinstance(self.inputs, dict):
            return dict(self.inputs)
        return {name: name for name in self.inputs}
