"""The `openai` provider: OpenAI-compatible chat completions at a configurable base URL.

Speaks POST {base_url}/chat/completions, which OpenAI, Azure OpenAI (through its /openai/v1
endpoint), vLLM, Ollama and the llama.cpp server all serve. Generation is a plain text
completion; structured tasks (request.json_schema set) send a strict JSON-schema
`response_format`, and their answer must parse as JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.providers.llm import DEFAULT_BASE_URL, LlmRequest, LlmResponse, ProviderError, estimate_tokens
from chalicelib.providers.network import check_url
from chalicelib.providers.retry import DEFAULT_BACKOFF, Backoff, Retryable, with_retries
from chalicelib.providers.transport import HttpResponse, Send, guarded_send, post_json

logger = Logger(child=True)

DEFAULT_MODEL = "gpt-4o-mini"
RETRIED_STATUSES = frozenset({408, 409, 429})  # plus every 5xx


def is_retried_status(status: int) -> bool:
    """5xx, 429 (rate limited), 408 (request timeout) and 409 (OpenAI's "try again") are retried."""
    return status >= 500 or status in RETRIED_STATUSES


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where an OpenAI-compatible API answers and how it is reached. Never logged: it holds the key.

    A private address is refused unless `allow_private` (tests, self-hosted models); `send` is the
    transport, by default one that judges the peer of every connection.
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    allow_private: bool = False
    send: Send | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def headers(self) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def transport(self) -> Send:
        return self.send or guarded_send(self.allow_private)


class OpenAICompatLlm:
    """An LlmProvider over HTTP. Never logs prompts, answers or the key."""

    name = "openai"

    def __init__(self, *, endpoint: Endpoint, model: str = DEFAULT_MODEL, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        self._url = endpoint.url("/chat/completions")
        self._headers = endpoint.headers()
        self.model = model
        self._allow_private = endpoint.allow_private
        self._send = endpoint.transport()
        self._backoff = backoff

    def complete(self, request: LlmRequest) -> LlmResponse:
        """One completion. Retries 5xx, 429, timeouts and connection errors with backoff.

        Raises ProviderError when the retries run out, on any other 4xx at once, on an answer that
        is not a chat completion, and on a structured answer that is not JSON.
        Raises BlockedDestination (a ProviderError) when the base URL is not a public address.
        """
        check_url(self._url, self._allow_private)  # at call time: DNS can change after publish
        payload = self._payload(request)
        started = time.perf_counter()
        try:
            answer = with_retries(lambda: self._attempt(payload, request.timeout_s),
                                  max_retries=request.max_retries, backoff_base_s=self._backoff.base_s,
                                  sleep=self._backoff.sleep)
        except Retryable as exc:
            logger.warning("llm call failed after retries", extra={"provider": self.name,
                                                                    "task": request.task})
            raise ProviderError(f"openai provider: {exc.reason} (after {request.max_retries + 1} attempts)",
                                provider=self.name, task=request.task) from exc
        return self._response(request, payload, answer, (time.perf_counter() - started) * 1000)

    def _payload(self, request: LlmRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": [{"role": message.role, "content": message.content} for message in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.json_schema is not None:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.task, "schema": dict(request.json_schema), "strict": True},
            }
        return payload

    def _attempt(self, payload: Mapping[str, Any], timeout_s: float) -> HttpResponse:
        try:
            answer = post_json(self._send, self._url, payload, timeout_s, self._headers)
        except TimeoutError as exc:
            raise Retryable(f"no answer within {timeout_s} s") from exc
        except ConnectionError as exc:
            raise Retryable(str(exc)) from exc
        if is_retried_status(answer.status):
            raise Retryable(f"HTTP {answer.status}")
        if answer.status >= 300:
            raise ProviderError(f"openai provider: HTTP {answer.status}: {_error_message(answer)}",
                                provider=self.name, status=answer.status)
        return answer

    def _response(self, request: LlmRequest, payload: Mapping[str, Any], answer: HttpResponse,
                  latency_ms: float) -> LlmResponse:
        try:
            body = answer.json()
            text = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ProviderError("openai provider: the answer is not a chat completion",
                                provider=self.name) from exc
        if not isinstance(text, str):
            raise ProviderError("openai provider: the completion has no text content", provider=self.name)
        if request.json_schema is not None:
            text = require_json(text, self.name)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        prompt_text = "".join(message.content for message in request.messages)
        return LlmResponse(
            text=text,
            model=str(body.get("model") or payload["model"]),
            prompt_tokens=_count(usage, "prompt_tokens", prompt_text),
            completion_tokens=_count(usage, "completion_tokens", text),
            latency_ms=latency_ms,
        )


def require_json(text: str, provider: str) -> str:
    """The JSON document in a structured answer (a ```json fence is tolerated). Raises ProviderError."""
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.strip("`").strip()
        if candidate.lower().startswith("json"):
            candidate = candidate[4:].strip()
    try:
        json.loads(candidate)
    except ValueError as exc:
        raise ProviderError(f"{provider} provider: the structured answer is not JSON",
                            provider=provider) from exc
    return candidate


def _count(usage: Mapping[str, Any], key: str, text: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and value >= 0 else estimate_tokens(text)


def _error_message(answer: HttpResponse) -> str:
    """The provider's own error message, shortened; never echoes the prompt we sent."""
    try:
        message = answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return "no error message"
    return str(message)[:200]
