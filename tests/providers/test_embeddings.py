"""Embedding providers: offline hashing, Bedrock Titan (Stubber) and OpenAI /embeddings (real HTTP)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.bedrock import BedrockConnection
from chalicelib.providers.embeddings import BedrockEmbedder, CallLimits, OfflineEmbedder, OpenAIEmbedder
from chalicelib.providers.llm import ProviderError
from chalicelib.providers.openai_compat import Endpoint
from chalicelib.providers.retry import Backoff
from tests.support.chat_server import ChatServer

if TYPE_CHECKING:
    from chalicelib.providers.llm import Vectors


def cosine(a: Vectors, b: Vectors) -> float:
    return float(a @ b)


def test_offline_rows_are_unit_float32_vectors_of_the_configured_size() -> None:
    matrix = OfflineEmbedder(dimensions=64).embed(["reset my password", "opening hours", "a"])
    assert matrix.shape == (3, 64)
    assert matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-6)


def test_offline_embeddings_are_the_same_in_every_embedder_and_call() -> None:
    texts = ["How do I reset my password?", "Réinitialiser mon mot de passe"]
    first = OfflineEmbedder().embed(texts)
    again = OfflineEmbedder().embed(list(reversed(texts)))[::-1]
    assert np.array_equal(first, again)


def test_offline_buckets_are_pinned_so_vectors_stay_valid_across_processes() -> None:
    # "hi" has three features: the word and the trigrams "<hi" and "hi>". Python's hash() would move
    # them with every PYTHONHASHSEED; crc32 does not, so cached vectors survive a cold start.
    vector = OfflineEmbedder(dimensions=256).embed(["hi"])[0]
    buckets = np.nonzero(vector)[0]
    assert buckets.tolist() == [17, 107, 172]
    assert np.sign(vector[buckets]).tolist() == [1.0, -1.0, 1.0]


def test_a_paraphrase_is_closer_than_an_unrelated_text() -> None:
    query, paraphrase, unrelated = OfflineEmbedder().embed([
        "How do I reset my password?",
        "I forgot my password, can you help me reset it",
        "What are your opening hours on Sunday?",
    ])
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.3


def test_accents_and_case_do_not_change_the_vector() -> None:
    a, b = OfflineEmbedder().embed(["Réinitialiser le MOT de passe", "reinitialiser le mot de passe"])
    assert cosine(a, b) == pytest.approx(1.0)


def test_a_text_without_words_gets_a_zero_row_similar_to_nothing() -> None:
    matrix = OfflineEmbedder().embed(["", "?!"])
    assert not matrix.any()


def test_no_texts_give_an_empty_matrix() -> None:
    assert OfflineEmbedder(dimensions=32).embed([]).shape == (0, 32)


def test_the_offline_embedder_refuses_a_non_positive_size() -> None:
    with pytest.raises(InvalidInput):
        OfflineEmbedder(dimensions=0)


# -- Bedrock Titan ---------------------------------------------------------------------------------

@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def titan_answer(vector: list[float]) -> dict[str, Any]:
    raw = json.dumps({"embedding": vector, "inputTextTokenCount": 3}).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


def test_titan_embeds_each_text_with_the_configured_dimensions(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    for vector in ([3.0, 4.0] + [0.0] * 254, [0.0, 2.0] + [0.0] * 254):
        stubber.add_response("invoke_model", titan_answer(vector), expected_params={
            "modelId": "amazon.titan-embed-text-v2:0", "contentType": "application/json",
            "accept": "application/json", "body": json.dumps(
                {"inputText": "hello" if vector[0] else "bye", "dimensions": 256, "normalize": True}),
        })

    matrix = BedrockEmbedder(connection=BedrockConnection(client=client)).embed(["hello", "bye"])

    assert matrix.shape == (2, 256)
    assert matrix.dtype == np.float32
    assert matrix[0, :2].tolist() == pytest.approx([0.6, 0.8])
    assert matrix[1, 1] == pytest.approx(1.0)


def test_titan_throttling_is_retried(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_client_error("invoke_model", service_error_code="ThrottlingException", http_status_code=429)
    stubber.add_response("invoke_model", titan_answer([1.0] * 256))
    matrix = BedrockEmbedder(connection=BedrockConnection(client=client), backoff=Backoff(0.0)).embed(["hello"])
    assert np.linalg.norm(matrix[0]) == pytest.approx(1.0)


def test_a_titan_answer_of_the_wrong_size_is_a_provider_error(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response("invoke_model", titan_answer([1.0] * 10))
    with pytest.raises(ProviderError, match="expected a vector of 256 numbers"):
        BedrockEmbedder(connection=BedrockConnection(client=client)).embed(["hello"])


def test_a_titan_answer_without_an_embedding_is_a_provider_error(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    raw = b'{"message": "nope"}'
    stubber.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(raw), len(raw)),
                                          "contentType": "application/json"})
    with pytest.raises(ProviderError, match="no embedding"):
        BedrockEmbedder(connection=BedrockConnection(client=client)).embed(["hello"])


def test_titan_refuses_a_size_it_cannot_produce() -> None:
    with pytest.raises(InvalidInput, match="256, 512 or 1024"):
        BedrockEmbedder(dimensions=300)


# -- OpenAI-compatible /embeddings ------------------------------------------------------------------

def an_openai_embedder(server: ChatServer, **options: Any) -> OpenAIEmbedder:
    endpoint = Endpoint(base_url=server.base_url, api_key="sk-e", allow_private=True)
    return OpenAIEmbedder(endpoint=endpoint, dimensions=8, backoff=Backoff(0.0), **options)


def test_openai_embeddings_are_requested_in_one_batch_and_normalised(chat_server: ChatServer) -> None:
    chat_server.vectors([[2.0] + [0.0] * 7, [0.0, 0.0, 5.0] + [0.0] * 5])

    matrix = an_openai_embedder(chat_server).embed(["hello", "bye"])

    assert matrix[0, 0] == pytest.approx(1.0)
    assert matrix[1, 2] == pytest.approx(1.0)
    sent = chat_server.requests[0]
    assert sent.path == "/v1/embeddings"
    assert sent.body == {"model": "text-embedding-3-small", "input": ["hello", "bye"], "dimensions": 8}
    assert sent.headers["authorization"] == "Bearer sk-e"


def test_openai_embeddings_are_batched_and_kept_in_order(chat_server: ChatServer) -> None:
    texts = [f"text {i}" for i in range(300)]
    matrix = an_openai_embedder(chat_server).embed(texts)
    assert [len(body["input"]) for body in chat_server.bodies] == [128, 128, 44]
    alone = an_openai_embedder(chat_server).embed(["text 299"])
    assert np.allclose(matrix[299], alone[0])


def test_an_openai_embeddings_500_is_retried(chat_server: ChatServer) -> None:
    chat_server.fail(500)
    matrix = an_openai_embedder(chat_server).embed(["hello"])
    assert matrix.shape == (1, 8)
    assert len(chat_server.requests) == 2


def test_openai_embeddings_failing_every_attempt_raise_provider_error(chat_server: ChatServer) -> None:
    for _ in range(2):
        chat_server.fail(502)
    with pytest.raises(ProviderError, match="after 2 attempts"):
        an_openai_embedder(chat_server, limits=CallLimits(max_retries=1)).embed(["hello"])


def test_an_openai_embeddings_400_is_not_retried(chat_server: ChatServer) -> None:
    chat_server.fail(400)
    with pytest.raises(ProviderError, match="HTTP 400"):
        an_openai_embedder(chat_server).embed(["hello"])
    assert len(chat_server.requests) == 1


def test_openai_embeddings_of_the_wrong_size_or_count_are_a_provider_error(chat_server: ChatServer) -> None:
    chat_server.vectors([[1.0] * 3])
    with pytest.raises(ProviderError, match="expected a vector of 8 numbers"):
        an_openai_embedder(chat_server).embed(["hello"])
    chat_server.vectors([[1.0] * 8])
    with pytest.raises(ProviderError, match="asked for 2 vectors, got 1"):
        an_openai_embedder(chat_server).embed(["a", "b"])
    chat_server.answer({"data": "nope"})
    with pytest.raises(ProviderError, match="not an embeddings list"):
        an_openai_embedder(chat_server).embed(["a"])


def test_openai_embeddings_to_a_loopback_url_are_refused_without_allow_private(
        chat_server: ChatServer) -> None:
    with pytest.raises(ProviderError, match="loopback"):
        OpenAIEmbedder(endpoint=Endpoint(base_url=chat_server.base_url)).embed(["hello"])
    assert chat_server.requests == []
    assert OpenAIEmbedder(endpoint=Endpoint(base_url=chat_server.base_url)).embed([]).shape == (0, 256)
