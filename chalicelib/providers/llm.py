"""The LLM and embedding ports every provider implements (DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from chalicelib.domain.errors import RucheError

# Where an OpenAI-compatible provider is called when config names no llm.base_url (key_policy.py
# judges which calls may carry the platform's key by it, without loading the HTTP client).
DEFAULT_BASE_URL = "https://api.openai.com/v1"

Task = Literal["understanding", "generation", "judge"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class LlmMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class LlmRequest:
    task: Task
    messages: tuple[LlmMessage, ...]
    model: str | None = None
    temperature: float = 0.3
    max_tokens: int = 600
    json_schema: Mapping[str, Any] | None = None  # structured tasks: understanding, judge
    timeout_s: float = 20.0
    max_retries: int = 2
    # The engine's deterministic stand-in answer (JSON text for structured tasks). Only the
    # offline provider reads it; real providers ignore it.
    offline_answer: str | None = None


@dataclass(frozen=True, slots=True)
class LlmResponse:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float = 0.0


class ProviderError(RucheError):
    """The provider failed after its retries (HTTP 5xx, timeout, unreadable answer)."""

    code = "provider_error"


class LlmProvider(Protocol):
    name: str

    def complete(self, request: LlmRequest) -> LlmResponse:
        """One completion. Retries with backoff inside; raises ProviderError when they run out."""
        ...


if TYPE_CHECKING:  # numpy loads with the first embedding, not at cold start (DESIGN.md §7 import budget)
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]


class EmbeddingProvider(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """An (n, dimensions) float32 matrix of L2-normalised rows."""
        ...


def estimate_tokens(text: str) -> int:
    """Where a provider reports no usage: characters / 4 (DESIGN.md §5, as for the peers' figures)."""
    return max(1, len(text) // 4)
