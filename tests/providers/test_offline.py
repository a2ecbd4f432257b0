"""The offline provider: the engine's own deterministic answer, no network."""

from __future__ import annotations

import pytest

from chalicelib.providers.llm import ProviderError
from chalicelib.providers.offline import OfflineLlm
from tests.providers.builders import a_request


def test_the_offline_answer_is_returned_with_estimated_tokens() -> None:
    response = OfflineLlm().complete(a_request("y" * 40, system="x" * 40, offline_answer="We open at 9."))

    assert response.text == "We open at 9."
    assert response.model == "offline"
    assert (response.prompt_tokens, response.completion_tokens) == (20, 3)


def test_the_same_request_always_gets_the_same_answer() -> None:
    request = a_request(task="judge", offline_answer='{"violations": []}')
    assert OfflineLlm().complete(request) == OfflineLlm().complete(request)


def test_a_request_without_an_offline_answer_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match="understanding request carries no offline_answer"):
        OfflineLlm().complete(a_request(task="understanding"))


def test_the_provider_is_honest_about_what_it_is() -> None:
    assert OfflineLlm.name == "offline"
