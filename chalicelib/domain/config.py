"""The configuration schema: every key, its type, its default, and the layers that may set it.

Layers, lowest first: platform (defaults, in code) < tenant < agent < channel < scenario < step.
A layer is a partial document of this schema; `null` in a layer never overrides. The resolver
(chalicelib/config) merges the layers and reports which layer set each key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Layer(StrEnum):
    PLATFORM = "platform"
    TENANT = "tenant"
    AGENT = "agent"
    CHANNEL = "channel"
    SCENARIO = "scenario"
    STEP = "step"


LAYER_ORDER: tuple[Layer, ...] = tuple(Layer)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class TaskModel(Section):
    model: str | None = Field(default=None, description="model id; None = the provider's default")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=8192)


class LlmTasks(Section):
    understanding: TaskModel = TaskModel(temperature=0.0, max_tokens=400)
    generation: TaskModel = TaskModel()
    judge: TaskModel = TaskModel(temperature=0.0, max_tokens=300)


class LlmConfig(Section):
    provider: Literal["offline", "openai", "bedrock", "replay"] = "offline"
    base_url: str | None = None
    region: str | None = None
    api_key_secret: str | None = Field(default=None, description="name of a tenant secret")
    api_key_env: str | None = Field(default=None, description="platform layer only")
    timeout_s: float = Field(default=20.0, gt=0, le=120)
    max_retries: int = Field(default=2, ge=0, le=5)
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=600, gt=0, le=8192)
    max_concurrency: int = Field(default=8, ge=1, le=1000, description="per tenant, per container")
    tasks: LlmTasks = LlmTasks()


class EmbeddingsConfig(Section):
    provider: Literal["offline", "openai", "bedrock"] = "offline"
    model: str | None = None
    dimensions: int = Field(default=256, ge=8, le=4096)


class EnforcementConfig(Section):
    max_regeneration_attempts: int = Field(default=2, ge=0, le=5)
    llm_judge: bool = Field(default=True, description="judge hard constraints that have no expression")
    judge_fails_closed: bool = Field(default=True, description="an unreadable judge verdict is a violation")


class ResponseConfig(Section):
    max_length: int = Field(default=1600, ge=20, le=40000, description="characters, after formatting")
    format: Literal["markdown", "plain"] = "markdown"


class RetrievalConfig(Section):
    max_rules: int = Field(default=12, ge=1, le=100)
    min_score: float = Field(default=0.15, ge=0, le=1)
    lexical_weight: float = Field(default=0.5, ge=0, le=1)


class ToolsConfig(Section):
    timeout_s: float = Field(default=5.0, gt=0, le=30)
    max_retries: int = Field(default=1, ge=0, le=5)
    base_url: str | None = Field(default=None, min_length=1, max_length=2048,
                                 description="a relative tool url is appended to it")


class SessionConfig(Section):
    idle_timeout_s: int = Field(default=86400, ge=60)
    accumulation_window_ms: int = Field(default=0, ge=0, le=30000)
    history_turns: int = Field(default=6, ge=0, le=50)


class NetworkConfig(Section):
    allow_private: bool = Field(default=False, description="platform layer only")


class RateLimitConfig(Section):
    """Per-minute limits (fixed windows). The platform's values are ceilings (config/ceilings.py)."""

    requests_per_minute: int = Field(
        default=600, ge=1, description="per tenant: API requests and public posts together; a ceiling"
    )
    binding_per_minute: int = Field(
        default=300, ge=1, description="posts to one webhook or webchat binding; a ceiling"
    )
    visitor_per_minute: int = Field(
        default=20, ge=1, description="posts of one webchat visitor or channel user, per binding; a ceiling"
    )
    new_visitors_per_minute: int = Field(
        default=30, ge=1, description="webchat posts without a visitor token, per binding; a ceiling"
    )


class QuotaConfig(Section):
    """Monthly usage quotas (enforced at turn time by usage metering); the platform's are ceilings."""

    monthly_tokens: int | None = Field(default=None, ge=0, description="null = unlimited; a ceiling")
    monthly_turns: int | None = Field(default=None, ge=0, description="null = unlimited; a ceiling")



class Config(Section):
    """The resolved configuration of a turn. Every default here is the platform layer."""

    llm: LlmConfig = LlmConfig()
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    enforcement: EnforcementConfig = EnforcementConfig()
    response: ResponseConfig = ResponseConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    tools: ToolsConfig = ToolsConfig()
    session: SessionConfig = SessionConfig()
    network: NetworkConfig = NetworkConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    quota: QuotaConfig = QuotaConfig()


# The platform's defaults per channel, under the platform layer's own values: what the channel
# can show. SMS and WhatsApp render no markdown and cut long texts; a tenant or agent layer may
# still override them.
CHANNEL_DEFAULTS: dict[str, dict[str, object]] = {
    "twilio": {"response": {"format": "plain", "max_length": 1600}},
    "whatsapp": {"response": {"format": "plain", "max_length": 4096}},
    "slack": {"response": {"max_length": 3000}},
}

# Keys that only some layers may set. Everything else may be set by every layer.
RESTRICTED_KEYS: dict[str, frozenset[Layer]] = {
    "llm.api_key_env": frozenset({Layer.PLATFORM}),
    "network.allow_private": frozenset({Layer.PLATFORM}),
    "rate_limit.requests_per_minute": frozenset({Layer.PLATFORM, Layer.TENANT}),
    "rate_limit.binding_per_minute": frozenset({Layer.PLATFORM, Layer.TENANT}),
    "rate_limit.visitor_per_minute": frozenset({Layer.PLATFORM, Layer.TENANT}),
    "rate_limit.new_visitors_per_minute": frozenset({Layer.PLATFORM, Layer.TENANT}),
    "quota.monthly_tokens": frozenset({Layer.PLATFORM, Layer.TENANT}),
    "quota.monthly_turns": frozenset({Layer.PLATFORM, Layer.TENANT}),
    # Where a bundle's relative tool urls point: one bundle runs in local, staging and production.
    "tools.base_url": frozenset({Layer.PLATFORM, Layer.TENANT, Layer.AGENT}),
    "embeddings.provider": frozenset({Layer.PLATFORM, Layer.TENANT, Layer.AGENT}),
    "embeddings.model": frozenset({Layer.PLATFORM, Layer.TENANT, Layer.AGENT}),
    "embeddings.dimensions": frozenset({Layer.PLATFORM, Layer.TENANT, Layer.AGENT}),
}


def validate_layer(layer: object, at: Layer, path: str = "config") -> list[tuple[str, str]]:
    """Every problem in one config layer, as (path, message) pairs; [] when it is valid.

    Checks unknown keys, keys this layer may not set, and each value's type and range.
    `null` values are allowed anywhere (they never override) and are not type-checked.
    """
    if not isinstance(layer, dict):
        return [(path, "a config layer must be an object")]
    problems: list[tuple[str, str]] = []
    _KeyCheck(path, at, problems).check(layer, Config, "")
    if problems:
        return problems
    try:
        Config.model_validate(_without_nulls(layer))
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        for error in getattr(exc, "errors", lambda **_: [])(include_input=False):
            where = ".".join(str(part) for part in error["loc"])
            problems.append((f"{path}.{where}", error["msg"]))
    return problems


@dataclass(frozen=True, slots=True)
class _KeyCheck:
    """Checks a layer's keys section by section, into `problems`, for a layer set at `at`."""

    path: str
    at: Layer
    problems: list[tuple[str, str]]

    def check(self, layer: dict[str, object], model: type[BaseModel], prefix: str) -> None:
        path, problems = self.path, self.problems
        for key, value in layer.items():
            dotted = f"{prefix}{key}"
            if key not in model.model_fields:
                known = ", ".join(sorted(model.model_fields))
                problems.append((f"{path}.{dotted}", f"unknown config key (known here: {known})"))
                continue
            allowed = RESTRICTED_KEYS.get(dotted)
            if allowed is not None and self.at not in allowed and value is not None:
                layers = ", ".join(sorted(layer_.value for layer_ in allowed))
                problems.append((f"{path}.{dotted}", f"may only be set at the {layers} layer"))
            annotation = model.model_fields[key].annotation
            if isinstance(annotation, type) and issubclass(annotation, Section):
                if isinstance(value, dict):
                    self.check(value, annotation, f"{dotted}.")
                elif value is not None:
                    problems.append((f"{path}.{dotted}", "must be an object"))


def _without_nulls(layer: dict[str, object]) -> dict[str, object]:
    return {
        key: _without_nulls(value) if isinstance(value, dict) else value
        for key, value in layer.items()
        if value is not None
    }
