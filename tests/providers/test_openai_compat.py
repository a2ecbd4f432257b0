"""The openai provider against a real HTTP server speaking the chat-completions protocol."""

from __future__ import annotations

import json

import pytest

from chalicelib.providers.llm import ProviderError
from chalicelib.providers.network import BlockedDestination
from chalicelib.providers.openai_compat import Endpoint, OpenAICompatLlm
from chalicelib.providers.retry import Backoff
from chalicelib.providers.transport import HttpRequest, HttpResponse
from tests.providers.builders import a_request
from tests.support.chat_server import ChatServer

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


def a_provider(server: ChatServer, **options: object) -> OpenAICompatLlm:
    endpoint = Endpoint(base_url=server.base_url, api_key="sk-test", allow_private=True)
    return OpenAICompatLlm(endpoint=endpoint, model="default-model", backoff=Backoff(0.01),
                           **options)  # type: ignore[arg-type]


def test_a_generation_is_a_plain_text_completion_with_reported_usage(chat_server: ChatServer) -> None:
    chat_server.reply("We open at 9.", prompt_tokens=42, completion_tokens=5)

    response = a_provider(chat_server).complete(a_request(temperature=0.2, max_tokens=50))

    assert (response.text, response.prompt_tokens, response.completion_tokens) == ("We open at 9.", 42, 5)
    assert response.model == "default-model"
    sent = chat_server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are a helpful shop assistant."},
        {"role": "user", "content": "What are your opening hours?"},
    ]
    assert (sent.body["temperature"], sent.body["max_tokens"]) == (0.2, 50)
    assert "response_format" not in sent.body


def test_the_requested_model_overrides_the_default(chat_server: ChatServer) -> None:
    chat_server.reply("ok")
    response = a_provider(chat_server).complete(a_request(model="gpt-special"))
    assert chat_server.bodies[0]["model"] == "gpt-special"
    assert response.model == "gpt-special"


def test_without_reported_usage_tokens_are_estimated_from_characters(chat_server: ChatServer) -> None:
    chat_server.reply("x" * 40)
    response = a_provider(chat_server).complete(a_request("y" * 80, system=""))
    assert (response.prompt_tokens, response.completion_tokens) == (20, 10)


def test_a_structured_task_sends_a_strict_json_schema_response_format(chat_server: ChatServer) -> None:
    chat_server.reply_json({"ok": True})

    response = a_provider(chat_server).complete(a_request(task="judge", json_schema=VERDICT_SCHEMA))

    assert json.loads(response.text) == {"ok": True}
    assert chat_server.bodies[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "judge", "schema": VERDICT_SCHEMA, "strict": True},
    }


def test_a_structured_answer_in_a_code_fence_is_unwrapped(chat_server: ChatServer) -> None:
    chat_server.reply('```json\n{"ok": false}\n```')
    response = a_provider(chat_server).complete(a_request(task="judge", json_schema=VERDICT_SCHEMA))
    assert json.loads(response.text) == {"ok": False}


def test_a_structured_answer_that_is_not_json_is_a_provider_error(chat_server: ChatServer) -> None:
    chat_server.reply("Sure! The reply looks fine to me.")
    with pytest.raises(ProviderError, match="not JSON"):
        a_provider(chat_server).complete(a_request(task="judge", json_schema=VERDICT_SCHEMA))


def test_a_500_is_retried_and_the_next_answer_is_used(chat_server: ChatServer) -> None:
    chat_server.fail(500)
    chat_server.reply("Recovered.")

    response = a_provider(chat_server).complete(a_request(max_retries=2))

    assert response.text == "Recovered."
    assert len(chat_server.requests) == 2


def test_a_429_is_retried(chat_server: ChatServer) -> None:
    chat_server.fail(429, "rate limited")
    chat_server.reply("ok")
    assert a_provider(chat_server).complete(a_request()).text == "ok"


def test_500_on_every_attempt_raises_provider_error_after_the_retries(chat_server: ChatServer) -> None:
    for _ in range(3):
        chat_server.fail(503)
    chat_server.reply("never reached")

    with pytest.raises(ProviderError, match=r"HTTP 503 \(after 3 attempts\)"):
        a_provider(chat_server).complete(a_request(max_retries=2))

    assert len(chat_server.requests) == 3
    assert chat_server.pending == 1


def test_a_timeout_is_retried_then_raises_provider_error(chat_server: ChatServer) -> None:
    chat_server.stall(5.0)
    chat_server.stall(5.0)

    with pytest.raises(ProviderError, match=r"no answer within 0\.3 s"):
        a_provider(chat_server).complete(a_request(timeout_s=0.3, max_retries=1))

    assert len(chat_server.requests) == 2


def test_a_timeout_then_an_answer_succeeds(chat_server: ChatServer) -> None:
    chat_server.stall(5.0)
    chat_server.reply("Here now.")
    assert a_provider(chat_server).complete(a_request(timeout_s=0.3, max_retries=1)).text == "Here now."


def test_a_400_is_not_retried_and_reports_the_providers_message(chat_server: ChatServer) -> None:
    chat_server.fail(400, "max_tokens is too large")
    chat_server.reply("never reached")

    with pytest.raises(ProviderError, match="HTTP 400: max_tokens is too large") as raised:
        a_provider(chat_server).complete(a_request(max_retries=3))

    assert raised.value.details["status"] == 400
    assert len(chat_server.requests) == 1


def test_an_answer_that_is_not_a_chat_completion_is_a_provider_error(chat_server: ChatServer) -> None:
    chat_server.answer({"unexpected": "shape"})
    with pytest.raises(ProviderError, match="not a chat completion"):
        a_provider(chat_server).complete(a_request())


def test_a_completion_without_text_content_is_a_provider_error(chat_server: ChatServer) -> None:
    chat_server.answer({"choices": [{"message": {"role": "assistant", "content": None}}]})
    with pytest.raises(ProviderError, match="no text content"):
        a_provider(chat_server).complete(a_request())


def test_a_redirect_is_not_followed(chat_server: ChatServer) -> None:
    chat_server.answer_raw(b"", status=302, headers={"Location": "http://169.254.169.254/latest/"})
    with pytest.raises(ProviderError, match="HTTP 302"):
        a_provider(chat_server).complete(a_request())
    assert len(chat_server.requests) == 1


def test_an_unreachable_host_is_retried_then_raises_provider_error() -> None:
    server = ChatServer()
    url = server.base_url
    server.stop()  # nothing listens on that port any more
    provider = OpenAICompatLlm(endpoint=Endpoint(base_url=url, allow_private=True), backoff=Backoff(0.01))
    with pytest.raises(ProviderError, match="after 2 attempts"):
        provider.complete(a_request(max_retries=1))


def test_a_loopback_base_url_is_refused_without_allow_private(chat_server: ChatServer) -> None:
    chat_server.reply("should not be asked")
    provider = OpenAICompatLlm(endpoint=Endpoint(base_url=chat_server.base_url))
    with pytest.raises(BlockedDestination, match="loopback"):
        provider.complete(a_request())
    assert chat_server.requests == []


def test_no_key_sends_no_authorization_header_and_extra_headers_are_sent(chat_server: ChatServer) -> None:
    chat_server.reply("ok")
    provider = OpenAICompatLlm(endpoint=Endpoint(base_url=chat_server.base_url, allow_private=True,
                                                 extra_headers={"api-key": "azure-key"}))
    provider.complete(a_request())
    headers = chat_server.requests[0].headers
    assert "authorization" not in headers
    assert headers["api-key"] == "azure-key"


def test_a_plain_function_can_stand_in_for_the_transport() -> None:
    seen: list[HttpRequest] = []

    def send(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        body = {"choices": [{"message": {"content": "from a function"}}], "usage": {"prompt_tokens": 3}}
        return HttpResponse(200, json.dumps(body).encode())

    provider = OpenAICompatLlm(endpoint=Endpoint(base_url="http://127.0.0.1:9/v1", allow_private=True, send=send))
    response = provider.complete(a_request(timeout_s=7.0))

    assert response.text == "from a function"
    assert response.prompt_tokens == 3
    assert seen[0].url == "http://127.0.0.1:9/v1/chat/completions"
    assert seen[0].timeout_s == 7.0


def test_a_name_that_resolves_to_a_private_address_at_connect_time_is_refused(
        chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a check at call time that saw a public address (DNS answered differently a moment ago)
    monkeypatch.setattr("chalicelib.providers.openai_compat.check_url", lambda url, allow_private: None)
    chat_server.reply("should never be asked")
    llm = OpenAICompatLlm(endpoint=Endpoint(base_url=chat_server.base_url, allow_private=False))
    # WHEN the connection reaches 127.0.0.1 after all
    with pytest.raises(ProviderError):
        llm.complete(a_request())
    # THEN nothing was sent to it
    assert chat_server.requests == []
