"""The `bedrock` provider: the Bedrock Converse API through boto3 (the AWS-native default).

System messages go to Converse's `system` blocks, the rest become alternating user/assistant
messages. Structured tasks ask for JSON only: the schema is appended to the system prompt and the
answer must parse as JSON. We chose that over toolConfig because every Converse model follows a
system prompt, while forced tool use is supported by only some of them.
boto3 is imported only when a client is built (the Lambda runtime provides it; tests stub it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger

from chalicelib.providers.llm import LlmMessage, LlmRequest, LlmResponse, ProviderError, estimate_tokens
from chalicelib.providers.openai_compat import require_json
from chalicelib.providers.retry import DEFAULT_BACKOFF, Backoff, Retryable, with_retries

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_bedrock_runtime.type_defs import MessageTypeDef, SystemContentBlockTypeDef

logger = Logger(child=True)
T = TypeVar("T")

DEFAULT_MODEL = "amazon.nova-lite-v1:0"
TRANSIENT_CODES = frozenset({
    "ThrottlingException", "ServiceUnavailableException", "ServiceUnavailable", "ModelTimeoutException",
    "InternalServerException", "ModelNotReadyException",
})
JSON_ONLY = ("Answer with one JSON object and nothing else: no prose, no code fence. "
             "It must validate against this JSON Schema:\n")


def bedrock_client(region: str | None, timeout_s: float) -> BedrockRuntimeClient:
    """A bedrock-runtime client whose own retries are off: ours (with jitter) do that job."""
    import boto3  # noqa: PLC0415 - lazy: a cold start that never calls Bedrock skips it
    from botocore.config import Config  # noqa: PLC0415

    config = Config(read_timeout=timeout_s, connect_timeout=min(timeout_s, 5.0),
                    retries={"total_max_attempts": 1, "mode": "standard"})
    return boto3.client("bedrock-runtime", region_name=region, config=config)


class BedrockConnection:
    """The bedrock-runtime client of a provider: the one given, else built on first use (boto3 loads
    only then) for `region`, with `timeout_s` as its read timeout (fixed once built)."""

    def __init__(self, *, client: BedrockRuntimeClient | None = None, region: str | None = None,
                 timeout_s: float = 20.0) -> None:
        self._client, self._region, self._timeout_s = client, region, timeout_s

    def client(self) -> BedrockRuntimeClient:
        if self._client is None:
            self._client = bedrock_client(self._region, self._timeout_s)
        return self._client


def call_bedrock(call: Callable[[], T], *, max_retries: int, backoff: Backoff, what: str) -> T:
    """Run one Bedrock API call with retries on throttling, unavailability and timeouts.

    Raises ProviderError when the retries run out, or at once on any other client error.
    """
    from botocore.exceptions import (  # noqa: PLC0415 - lazy, as above
        BotoCoreError,
        ClientError,
        ConnectionError,
        ReadTimeoutError,
    )

    def attempt() -> T:
        try:
            return call()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in TRANSIENT_CODES:
                raise Retryable(code) from exc
            raise ProviderError(f"bedrock provider: {code or 'client error'} on {what}",
                                provider="bedrock", code=code) from exc
        except (ReadTimeoutError, ConnectionError) as exc:  # ConnectTimeoutError is a ConnectionError
            raise Retryable(type(exc).__name__) from exc
        except BotoCoreError as exc:  # no credentials, bad region, ...: asking again will not help
            raise ProviderError(f"bedrock provider: {type(exc).__name__} on {what}",
                                provider="bedrock") from exc

    try:
        return with_retries(attempt, max_retries=max_retries, backoff_base_s=backoff.base_s, sleep=backoff.sleep)
    except Retryable as exc:
        logger.warning("bedrock call failed after retries", extra={"operation": what, "code": exc.reason})
        raise ProviderError(f"bedrock provider: {exc.reason} on {what} (after {max_retries + 1} attempts)",
                            provider="bedrock", code=exc.reason) from exc


class BedrockLlm:
    """An LlmProvider over Bedrock Converse. Builds its client lazily, once."""

    name = "bedrock"

    def __init__(self, *, connection: BedrockConnection | None = None, model: str = DEFAULT_MODEL,
                 backoff: Backoff = DEFAULT_BACKOFF) -> None:
        self._connection = connection or BedrockConnection()
        self.model = model
        self._backoff = backoff

    def complete(self, request: LlmRequest) -> LlmResponse:
        """One Converse call. Raises ProviderError after the retries, or on an unusable answer.

        The client's read timeout is fixed when it is built; request.timeout_s is not re-applied.
        """
        client = self._connection.client()
        model = request.model or self.model
        system, messages = converse_messages(request.messages)
        if request.json_schema is not None:
            system.append({"text": JSON_ONLY + json.dumps(dict(request.json_schema), sort_keys=True)})
        started = time.perf_counter()
        answer = call_bedrock(
            lambda: client.converse(
                modelId=model, messages=messages, system=system,
                inferenceConfig={"maxTokens": request.max_tokens, "temperature": request.temperature},
            ),
            max_retries=request.max_retries, backoff=self._backoff, what="converse",
        )
        latency_ms = (time.perf_counter() - started) * 1000
        blocks = answer.get("output", {}).get("message", {}).get("content", [])
        texts = [block["text"] for block in blocks if "text" in block]
        if not texts:
            raise ProviderError("bedrock provider: the answer has no text", provider=self.name,
                                stop_reason=str(answer.get("stopReason", "")))
        text = "".join(texts)
        if request.json_schema is not None:
            text = require_json(text, self.name)
        usage: Any = answer.get("usage") or {}
        prompt_text = "".join(message.content for message in request.messages)
        return LlmResponse(
            text=text,
            model=model,
            prompt_tokens=int(usage.get("inputTokens", estimate_tokens(prompt_text))),
            completion_tokens=int(usage.get("outputTokens", estimate_tokens(text))),
            latency_ms=latency_ms,
        )


def converse_messages(
    messages: tuple[LlmMessage, ...],
) -> tuple[list[SystemContentBlockTypeDef], list[MessageTypeDef]]:
    """Split system prompts from the dialogue; merge consecutive turns of one role.

    Converse rejects two user (or two assistant) messages in a row, and wants the dialogue to
    open with the user: a leading assistant message is carried as context in the system prompt.
    """
    system: list[SystemContentBlockTypeDef] = []
    dialogue: list[MessageTypeDef] = []
    for message in messages:
        if message.role == "system":
            system.append({"text": message.content})
        elif not dialogue and message.role == "assistant":
            system.append({"text": f"(Earlier, the assistant said:) {message.content}"})
        elif dialogue and dialogue[-1]["role"] == message.role:
            dialogue[-1] = {"role": message.role,
                            "content": [*dialogue[-1]["content"], {"text": message.content}]}
        else:
            dialogue.append({"role": message.role, "content": [{"text": message.content}]})
    return system, dialogue
