"""Build the LLM and embedding providers a resolved config asks for, behind a per-tenant cap.

DESIGN.md §5: "a per-tenant concurrency cap on every provider". The cap is a bounded semaphore per
(tenant, provider) shared by every provider object built in this container, so one tenant's burst
cannot take all of the container's outbound connections. Heavy imports (boto3) happen inside the
providers that use them, when they first call out.
"""

from __future__ import annotations

import threading
from pathlib import Path

from chalicelib.domain.config import EmbeddingsConfig, LlmConfig
from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.llm import (
    DEFAULT_BASE_URL,
    EmbeddingProvider,
    LlmProvider,
    LlmRequest,
    LlmResponse,
    ProviderError,
)
from chalicelib.providers.network import check_url
from chalicelib.providers.offline import OfflineLlm
from chalicelib.providers.openai_compat import Endpoint, OpenAICompatLlm
from chalicelib.providers.tracing import traced

_SEMAPHORES: dict[tuple[str, str, int], threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()


def tenant_semaphore(tenant_id: str, provider: str, limit: int) -> threading.BoundedSemaphore:
    """The container-wide semaphore of one (tenant, provider) pair; created on first use.

    The limit is part of the key, so a config change takes effect at once (old calls drain on the
    old semaphore).
    """
    key = (tenant_id, provider, limit)
    with _SEMAPHORES_LOCK:
        semaphore = _SEMAPHORES.get(key)
        if semaphore is None:
            semaphore = _SEMAPHORES[key] = threading.BoundedSemaphore(limit)
        return semaphore


class CappedLlm:
    """At most `limit` calls in flight through this provider (or through a shared semaphore)."""

    def __init__(self, inner: LlmProvider, limit: int, *,
                 semaphore: threading.BoundedSemaphore | None = None) -> None:
        if limit < 1:
            raise InvalidInput.at("llm.max_concurrency", "must be at least 1")
        self._inner = inner
        self.name = inner.name
        self._limit = limit
        self._semaphore = semaphore or threading.BoundedSemaphore(limit)

    def complete(self, request: LlmRequest) -> LlmResponse:
        """The inner provider's answer. Waits up to request.timeout_s for a free slot, then raises
        ProviderError (the inner provider is not called)."""
        if not self._semaphore.acquire(timeout=request.timeout_s):
            raise ProviderError(
                f"{self.name} provider: {self._limit} calls already in flight for this tenant "
                f"(llm.max_concurrency); no slot freed within {request.timeout_s} s",
                provider=self.name, reason="concurrency_cap")
        try:
            with traced("llm", provider=self.name):
                return self._inner.complete(request)
        finally:
            self._semaphore.release()


def build_llm(config: LlmConfig, api_key: str | None, *, allow_private: bool, cassette: str | None = None,
              tenant_id: str | None = None) -> LlmProvider:
    """The provider config.provider names, capped per (tenant, provider) when tenant_id is given.

    `cassette` with provider "replay" replays that file; with any other provider it records the
    real exchanges into it. Raises InvalidInput for a replay provider without a cassette, or an
    openai base URL that is not http(s) or (without allow_private) not public.
    """
    provider = _bare_llm(config, api_key, allow_private=allow_private, cassette=cassette)
    if cassette is not None and config.provider != "replay":
        from chalicelib.providers.replay import RecordingLlm  # noqa: PLC0415 - PyYAML, only with a cassette

        provider = RecordingLlm(provider, cassette)
    if tenant_id is None:
        return provider
    semaphore = tenant_semaphore(tenant_id, provider.name, config.max_concurrency)
    return CappedLlm(provider, config.max_concurrency, semaphore=semaphore)


def _bare_llm(config: LlmConfig, api_key: str | None, *, allow_private: bool,
              cassette: str | None) -> LlmProvider:
    if config.provider == "openai":
        base_url = config.base_url or DEFAULT_BASE_URL
        check_url(base_url, allow_private, at_publish=True, path="llm.base_url")
        return OpenAICompatLlm(endpoint=Endpoint(base_url=base_url, api_key=api_key, allow_private=allow_private))
    if config.provider == "bedrock":
        from chalicelib.providers.bedrock import (  # noqa: PLC0415 - boto3's bedrock client, on demand
            BedrockConnection,
            BedrockLlm,
        )

        return BedrockLlm(connection=BedrockConnection(region=config.region, timeout_s=config.timeout_s))
    if config.provider == "replay":
        if cassette is None:
            raise InvalidInput.at("llm.provider", "the replay provider needs a cassette file")
        from chalicelib.providers.replay import ReplayLlm  # noqa: PLC0415 - PyYAML, only with a cassette

        return ReplayLlm.from_file(Path(cassette))
    return OfflineLlm()


def build_embedder(config: EmbeddingsConfig, *, api_key: str | None = None, base_url: str | None = None,
                   region: str | None = None, allow_private: bool = False) -> EmbeddingProvider:
    """The embedder config.provider names; `model` None means the provider's default.

    Raises InvalidInput for dimensions the provider cannot produce or a refused base URL.
    """
    # numpy loads with the first embedder, not at cold start (DESIGN.md §7 import budget)
    from chalicelib.providers.bedrock import BedrockConnection  # noqa: PLC0415 - as the embedders
    from chalicelib.providers.embeddings import (  # noqa: PLC0415
        BedrockEmbedder,
        OfflineEmbedder,
        OpenAIEmbedder,
    )

    if config.provider == "openai":
        url = base_url or DEFAULT_BASE_URL
        check_url(url, allow_private, at_publish=True, path="llm.base_url")
        endpoint = Endpoint(base_url=url, api_key=api_key, allow_private=allow_private)
        if config.model:
            return OpenAIEmbedder(endpoint=endpoint, model=config.model, dimensions=config.dimensions)
        return OpenAIEmbedder(endpoint=endpoint, dimensions=config.dimensions)
    if config.provider == "bedrock":
        connection = BedrockConnection(region=region, timeout_s=10.0)
        if config.model:
            return BedrockEmbedder(connection=connection, model=config.model, dimensions=config.dimensions)
        return BedrockEmbedder(connection=connection, dimensions=config.dimensions)
    return OfflineEmbedder(config.dimensions)
