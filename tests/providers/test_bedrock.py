"""The bedrock provider through a real boto3 client, stubbed by botocore's Stubber (no network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from chalicelib.providers.bedrock import JSON_ONLY, BedrockConnection, BedrockLlm, bedrock_client, converse_messages
from chalicelib.providers.llm import LlmMessage, ProviderError
from chalicelib.providers.retry import Backoff
from tests.providers.builders import a_request
from tests.support.chat_server import ChatServer

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@pytest.fixture
def client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1")


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def converse_answer(text: str, input_tokens: int = 30, output_tokens: int = 4) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                  "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": 120},
    }


def a_provider(client: Any) -> BedrockLlm:
    return BedrockLlm(connection=BedrockConnection(client=client), model="amazon.nova-lite-v1:0", backoff=Backoff(0.0))


def test_a_generation_sends_the_system_prompt_apart_and_reports_usage(client: Any, stubber: Stubber) -> None:
    stubber.add_response("converse", converse_answer("We open at 9.", 31, 5), expected_params={
        "modelId": "amazon.nova-lite-v1:0",
        "system": [{"text": "You are a helpful shop assistant."}],
        "messages": [{"role": "user", "content": [{"text": "What are your opening hours?"}]}],
        "inferenceConfig": {"maxTokens": 80, "temperature": 0.1},
    })

    response = a_provider(client).complete(a_request(max_tokens=80, temperature=0.1))

    assert (response.text, response.prompt_tokens, response.completion_tokens) == ("We open at 9.", 31, 5)
    assert response.model == "amazon.nova-lite-v1:0"


def test_a_structured_task_asks_for_json_only_and_returns_the_parsed_document(
        client: Any, stubber: Stubber) -> None:
    stubber.add_response("converse", converse_answer('```json\n{"ok": true}\n```'), expected_params={
        "modelId": "anthropic.claude-3-haiku", "messages": ANY, "inferenceConfig": ANY,
        "system": [{"text": "You are a helpful shop assistant."},
                   {"text": JSON_ONLY + json.dumps(SCHEMA, sort_keys=True)}],
    })

    response = a_provider(client).complete(
        a_request(task="judge", json_schema=SCHEMA, model="anthropic.claude-3-haiku"))

    assert json.loads(response.text) == {"ok": True}
    assert response.model == "anthropic.claude-3-haiku"


def test_a_structured_answer_that_is_not_json_is_a_provider_error(client: Any, stubber: Stubber) -> None:
    stubber.add_response("converse", converse_answer("The reply is compliant."))
    with pytest.raises(ProviderError, match="not JSON"):
        a_provider(client).complete(a_request(task="understanding", json_schema=SCHEMA))


TRANSIENT = ["ThrottlingException", "ServiceUnavailableException", "ModelTimeoutException"]


@pytest.mark.parametrize("code", TRANSIENT)
def test_a_transient_error_is_retried_and_the_next_answer_is_used(
        client: Any, stubber: Stubber, code: str) -> None:
    stubber.add_client_error("converse", service_error_code=code, http_status_code=429)
    stubber.add_response("converse", converse_answer("Recovered."))

    assert a_provider(client).complete(a_request(max_retries=1)).text == "Recovered."


def test_throttling_on_every_attempt_raises_provider_error(client: Any, stubber: Stubber) -> None:
    for _ in range(3):
        stubber.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)

    with pytest.raises(ProviderError, match=r"ThrottlingException on converse \(after 3 attempts\)"):
        a_provider(client).complete(a_request(max_retries=2))


def test_a_validation_error_is_not_retried(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error("converse", service_error_code="ValidationException", http_status_code=400)

    with pytest.raises(ProviderError, match="ValidationException") as raised:
        a_provider(client).complete(a_request(max_retries=3))

    assert raised.value.details["code"] == "ValidationException"


def test_an_answer_without_text_is_a_provider_error(client: Any, stubber: Stubber) -> None:
    answer = converse_answer("")
    answer["output"]["message"]["content"] = []
    answer["stopReason"] = "content_filtered"
    stubber.add_response("converse", answer)

    with pytest.raises(ProviderError, match="no text") as raised:
        a_provider(client).complete(a_request())

    assert raised.value.details["stop_reason"] == "content_filtered"


def test_a_read_timeout_is_retried_then_raises_provider_error(chat_server: ChatServer) -> None:
    chat_server.stall(5.0)
    chat_server.stall(5.0)
    client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=chat_server.url,
                          config=Config(read_timeout=0.3, retries={"total_max_attempts": 1}))

    with pytest.raises(ProviderError, match="ReadTimeoutError"):
        a_provider(client).complete(a_request(max_retries=1))

    assert len(chat_server.requests) == 2
    assert chat_server.requests[0].path == "/model/amazon.nova-lite-v1%3A0/converse"


def test_without_a_client_one_is_built_from_the_region_on_first_call(
        chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 honours service-specific endpoint variables: the lazily built client talks to our server.
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", chat_server.url)
    chat_server.answer(converse_answer("Built lazily.", 7, 2))
    provider = BedrockLlm(connection=BedrockConnection(region="eu-west-3", timeout_s=3.0))

    response = provider.complete(a_request())

    assert (response.text, response.prompt_tokens) == ("Built lazily.", 7)
    assert "eu-west-3" in chat_server.requests[0].headers["authorization"]  # SigV4 credential scope


def test_the_built_client_leaves_retries_to_the_provider() -> None:
    client = bedrock_client("eu-west-3", 4.0)
    assert client.meta.region_name == "eu-west-3"
    config: Any = client.meta.config
    assert config.read_timeout == 4.0
    assert config.retries["total_max_attempts"] == 1  # botocore retries nothing


def test_converse_messages_merge_consecutive_roles_and_lift_a_leading_assistant_turn() -> None:
    system, dialogue = converse_messages((
        LlmMessage("system", "rules"),
        LlmMessage("assistant", "Hello, how can I help?"),
        LlmMessage("user", "Hi."),
        LlmMessage("user", "I need a refund."),
        LlmMessage("assistant", "Sure."),
    ))

    assert system == [{"text": "rules"}, {"text": "(Earlier, the assistant said:) Hello, how can I help?"}]
    assert dialogue == [
        {"role": "user", "content": [{"text": "Hi."}, {"text": "I need a refund."}]},
        {"role": "assistant", "content": [{"text": "Sure."}]},
    ]
