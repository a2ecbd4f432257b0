"""Building providers from the resolved config, and the per-tenant concurrency cap."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chalicelib.domain.config import EmbeddingsConfig, LlmConfig
from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.bedrock import BedrockLlm
from chalicelib.providers.embeddings import BedrockEmbedder, OfflineEmbedder, OpenAIEmbedder
from chalicelib.providers.factory import CappedLlm, build_embedder, build_llm, tenant_semaphore
from chalicelib.providers.llm import LlmRequest, LlmResponse, ProviderError
from chalicelib.providers.offline import OfflineLlm
from chalicelib.providers.openai_compat import OpenAICompatLlm
from chalicelib.providers.replay import RecordingLlm, ReplayLlm
from tests.providers.builders import a_request
from tests.support.chat_server import ChatServer


def test_the_default_config_builds_the_offline_provider() -> None:
    assert isinstance(build_llm(LlmConfig(), None, allow_private=False), OfflineLlm)


def test_an_openai_config_talks_to_its_base_url_with_the_key(chat_server: ChatServer) -> None:
    chat_server.reply("hello")
    config = LlmConfig(provider="openai", base_url=chat_server.base_url)
    provider = build_llm(config, "sk-tenant", allow_private=True)
    assert provider.complete(a_request()).text == "hello"
    assert chat_server.requests[0].headers["authorization"] == "Bearer sk-tenant"


def test_an_openai_config_on_a_private_address_is_invalid_without_allow_private() -> None:
    config = LlmConfig(provider="openai", base_url="http://169.254.169.254/v1")
    with pytest.raises(InvalidInput) as raised:
        build_llm(config, None, allow_private=False)
    assert raised.value.details["errors"][0]["path"] == "llm.base_url"


def test_an_openai_config_without_base_url_targets_openai() -> None:
    assert isinstance(build_llm(LlmConfig(provider="openai"), "k", allow_private=False), OpenAICompatLlm)


def test_a_bedrock_config_builds_the_bedrock_provider_without_calling_aws() -> None:
    assert isinstance(build_llm(LlmConfig(provider="bedrock", region="eu-west-1"), None, allow_private=False),
                      BedrockLlm)


def test_the_replay_provider_needs_a_cassette(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="needs a cassette"):
        build_llm(LlmConfig(provider="replay"), None, allow_private=False)
    cassette = tmp_path / "c.yaml"
    cassette.write_text("- response: {text: scripted}\n")
    provider = build_llm(LlmConfig(provider="replay"), None, allow_private=False, cassette=str(cassette))
    assert isinstance(provider, ReplayLlm)
    assert provider.complete(a_request()).text == "scripted"


def test_a_cassette_with_a_real_provider_records_it(tmp_path: Path) -> None:
    cassette = tmp_path / "rec.yaml"
    provider = build_llm(LlmConfig(), None, allow_private=False, cassette=str(cassette))
    assert isinstance(provider, RecordingLlm)
    provider.complete(a_request(offline_answer="recorded"))
    assert "recorded" in cassette.read_text()


def test_with_a_tenant_the_provider_is_capped_by_a_shared_semaphore() -> None:
    config = LlmConfig(max_concurrency=3)
    provider = build_llm(config, None, allow_private=False, tenant_id="t-cap")
    assert isinstance(provider, CappedLlm)
    assert provider.complete(a_request(offline_answer="ok")).text == "ok"
    assert tenant_semaphore("t-cap", "offline", 3) is tenant_semaphore("t-cap", "offline", 3)
    assert tenant_semaphore("t-cap", "offline", 3) is not tenant_semaphore("t-other", "offline", 3)


class BlockingLlm:
    """A provider that holds its slot until the test lets it go."""

    name = "blocking"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def complete(self, request: LlmRequest) -> LlmResponse:
        self.entered.set()
        self.release.wait(10)
        return LlmResponse(text="done", model="m", prompt_tokens=1, completion_tokens=1)


def test_a_call_beyond_the_cap_waits_its_timeout_then_fails_without_calling_the_provider() -> None:
    inner = BlockingLlm()
    capped = CappedLlm(inner, 1)
    first = threading.Thread(target=capped.complete, args=(a_request(),))
    first.start()
    inner.entered.wait(10)
    inner.entered.clear()

    with pytest.raises(ProviderError, match="1 calls already in flight") as raised:
        capped.complete(a_request(timeout_s=0.05))

    assert raised.value.details["reason"] == "concurrency_cap"
    assert not inner.entered.is_set()
    inner.release.set()
    first.join(10)
    assert capped.complete(a_request()).text == "done"  # the slot came back


def test_a_cap_below_one_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        CappedLlm(OfflineLlm(), 0)


def test_the_embedder_follows_the_config() -> None:
    assert isinstance(build_embedder(EmbeddingsConfig()), OfflineEmbedder)
    assert build_embedder(EmbeddingsConfig(dimensions=64)).dimensions == 64
    openai = build_embedder(EmbeddingsConfig(provider="openai", model="e5", dimensions=64),
                            base_url="http://127.0.0.1:1/v1", allow_private=True)
    assert isinstance(openai, OpenAIEmbedder)
    assert openai.model == "e5"
    assert isinstance(build_embedder(EmbeddingsConfig(provider="openai")), OpenAIEmbedder)
    titan = build_embedder(EmbeddingsConfig(provider="bedrock", dimensions=512), region="eu-west-1")
    assert isinstance(titan, BedrockEmbedder)
    assert titan.model == "amazon.titan-embed-text-v2:0"
    custom = build_embedder(EmbeddingsConfig(provider="bedrock", model="amazon.titan-x"))
    assert custom.model == "amazon.titan-x"


def test_an_embedder_on_a_private_url_is_invalid_without_allow_private() -> None:
    with pytest.raises(InvalidInput):
        build_embedder(EmbeddingsConfig(provider="openai"), base_url="http://10.0.0.8/v1")
