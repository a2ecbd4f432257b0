"""Embedding providers: offline feature hashing, Bedrock Titan, and OpenAI-compatible /embeddings.

Every `embed` returns an (n, dimensions) float32 matrix whose rows have unit L2 norm (a text with
no features at all, such as "", gets a zero row: it is similar to nothing).
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.bedrock import BedrockConnection, call_bedrock
from chalicelib.providers.llm import ProviderError
from chalicelib.providers.network import check_url
from chalicelib.providers.openai_compat import Endpoint, is_retried_status
from chalicelib.providers.retry import DEFAULT_BACKOFF, Backoff, Retryable, with_retries
from chalicelib.providers.transport import HttpResponse, post_json

if TYPE_CHECKING:

    from chalicelib.providers.llm import Vectors

WORD = re.compile(r"\w+")
# Weights per feature kind: whole words carry the meaning, bigrams the phrasing, and character
# trigrams bridge inflections ("reset" / "resetting") without drowning the words (a text has
# several times more trigrams than words).
UNIGRAM_WEIGHT, BIGRAM_WEIGHT, TRIGRAM_WEIGHT = 1.0, 0.6, 0.25
_FEATURE_CACHE_MAX = 200_000


def normalize_rows(matrix: Vectors) -> Vectors:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


class OfflineEmbedder:
    """Deterministic embeddings by signed feature hashing; no model, no download, no network.

    Features: lower-cased word unigrams, word bigrams and character trigrams of each word (with
    boundary marks), accents folded. Each feature is hashed with crc32 (stable across processes,
    unlike hash()) to a bucket and a sign, so collisions cancel out on average.
    """

    model = "offline-hashing-v1"

    def __init__(self, dimensions: int = 256) -> None:
        if dimensions < 1:
            raise InvalidInput.at("embeddings.dimensions", "must be positive")
        self.dimensions = dimensions
        self._buckets: dict[str, tuple[int, float]] = {}  # feature -> (bucket, ±1); shared vocabulary

    def embed(self, texts: Sequence[str]) -> Vectors:
        """An (n, dimensions) float32 matrix; the same text always gets the same row."""
        rows: list[int] = []
        columns: list[int] = []
        values: list[float] = []
        for row, text in enumerate(texts):
            for feature, weight in _features(text):
                bucket, sign = self._bucket(feature)
                rows.append(row)
                columns.append(bucket)
                values.append(sign * weight)
        matrix = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        np.add.at(matrix, (np.asarray(rows, dtype=np.intp), np.asarray(columns, dtype=np.intp)),
                  np.asarray(values, dtype=np.float32))
        return normalize_rows(matrix)

    def _bucket(self, feature: str) -> tuple[int, float]:
        found = self._buckets.get(feature)
        if found is None:
            digest = zlib.crc32(feature.encode("utf-8"))
            found = (digest % self.dimensions, 1.0 if digest & 0x80000000 else -1.0)
            if len(self._buckets) >= _FEATURE_CACHE_MAX:  # bounded: a warm container must not grow
                self._buckets.clear()
            self._buckets[feature] = found
        return found


def _features(text: str) -> list[tuple[str, float]]:
    lowered = text.lower()
    if not lowered.isascii():  # fold accents: "réinitialiser" matches "reinitialiser"
        lowered = "".join(c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c))
    words = WORD.findall(lowered)
    features = [(word, UNIGRAM_WEIGHT) for word in words]
    features += [(f"{first} {second}", BIGRAM_WEIGHT) for first, second in itertools.pairwise(words)]
    for word in words:
        marked = f"<{word}>"
        features += [("#" + marked[i:i + 3], TRIGRAM_WEIGHT) for i in range(len(marked) - 2)]
    return features


class BedrockEmbedder:
    """Amazon Titan Text Embeddings v2 through invoke_model (one text per call, as Titan requires)."""

    TITAN_DIMENSIONS = frozenset({256, 512, 1024})

    def __init__(self, *, connection: BedrockConnection | None = None, model: str = "amazon.titan-embed-text-v2:0",
                 dimensions: int = 256, max_retries: int = 2, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        if dimensions not in self.TITAN_DIMENSIONS:
            raise InvalidInput.at("embeddings.dimensions", "Titan v2 supports 256, 512 or 1024")
        self._connection = connection or BedrockConnection(timeout_s=10.0)
        self.model, self.dimensions = model, dimensions
        self._max_retries, self._backoff = max_retries, backoff

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Raises ProviderError after the retries, or when an answer has the wrong shape."""
        matrix = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            matrix[row] = self._embed_one(text)
        return normalize_rows(matrix)

    def _embed_one(self, text: str) -> list[float]:
        client = self._connection.client()
        body = json.dumps({"inputText": text, "dimensions": self.dimensions, "normalize": True})
        answer = call_bedrock(
            lambda: client.invoke_model(modelId=self.model, body=body, contentType="application/json",
                                        accept="application/json"),
            max_retries=self._max_retries, backoff=self._backoff, what="invoke_model",
        )
        try:
            vector = json.loads(answer["body"].read())["embedding"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("bedrock embedder: the answer has no embedding", provider="bedrock") from exc
        return _checked(vector, self.dimensions, "bedrock")


@dataclass(frozen=True, slots=True)
class CallLimits:
    """How long one embeddings call may take and how often it is tried again (a chat request carries
    its own, LlmRequest)."""

    timeout_s: float = 10.0
    max_retries: int = 2


DEFAULT_LIMITS = CallLimits()


class OpenAIEmbedder:
    """POST {base_url}/embeddings, in batches, with the same retries as the chat provider."""

    BATCH = 128

    def __init__(self, *, endpoint: Endpoint, model: str = "text-embedding-3-small", dimensions: int = 256,
                 limits: CallLimits = DEFAULT_LIMITS, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        self._url = endpoint.url("/embeddings")
        self._headers = endpoint.headers()
        self.model, self.dimensions = model, dimensions
        self._allow_private, self._send = endpoint.allow_private, endpoint.transport()
        self._timeout_s, self._max_retries = limits.timeout_s, limits.max_retries
        self._backoff = backoff

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Raises ProviderError after the retries, on a 4xx, or when an answer has the wrong shape."""
        matrix = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if texts:
            check_url(self._url, self._allow_private)
        for start in range(0, len(texts), self.BATCH):
            batch = list(texts[start:start + self.BATCH])
            for offset, vector in enumerate(self._embed_batch(batch)):
                matrix[start + offset] = vector
        return normalize_rows(matrix)

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        payload = {"model": self.model, "input": batch, "dimensions": self.dimensions}
        try:
            answer = with_retries(lambda: self._attempt(payload), max_retries=self._max_retries,
                                  backoff_base_s=self._backoff.base_s, sleep=self._backoff.sleep)
        except Retryable as exc:
            raise ProviderError(f"openai embedder: {exc.reason} (after {self._max_retries + 1} attempts)",
                                provider="openai") from exc
        try:
            data = sorted(answer.json()["data"], key=lambda item: int(item["index"]))
            vectors = [_checked(item["embedding"], self.dimensions, "openai") for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("openai embedder: the answer is not an embeddings list",
                                provider="openai") from exc
        if len(vectors) != len(batch):
            raise ProviderError(f"openai embedder: asked for {len(batch)} vectors, got {len(vectors)}",
                                provider="openai")
        return vectors

    def _attempt(self, payload: dict[str, object]) -> HttpResponse:
        try:
            answer = post_json(self._send, self._url, payload, self._timeout_s, self._headers)
        except (TimeoutError, ConnectionError) as exc:
            raise Retryable(type(exc).__name__) from exc
        if is_retried_status(answer.status):
            raise Retryable(f"HTTP {answer.status}")
        if answer.status >= 300:
            raise ProviderError(f"openai embedder: HTTP {answer.status}", provider="openai",
                                status=answer.status)
        return answer


def _checked(vector: object, dimensions: int, provider: str) -> list[float]:
    problem = ProviderError(f"{provider} embedder: expected a vector of {dimensions} numbers",
                            provider=provider)
    if not isinstance(vector, list) or len(vector) != dimensions:
        raise problem
    try:
        return [float(value) for value in vector]
    except (TypeError, ValueError) as exc:
        raise problem from exc
