"""Cassettes: exchanges served in order, scripted errors, and recording from a real provider."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.llm import LlmMessage, LlmRequest, ProviderError
from chalicelib.providers.openai_compat import Endpoint, OpenAICompatLlm
from chalicelib.providers.replay import RecordingLlm, ReplayLlm, load_cassette, summarize
from tests.providers.builders import a_request
from tests.support.chat_server import ChatServer

VIOLATING_MODEL = """\
# A model that promises a refund (forbidden), then complies when told why.
exchanges:
  - task: generation
    request_summary: "generation: I want my money back"
    response: {text: "Sure, I have refunded you 100%!", prompt_tokens: 812, completion_tokens: 9}
  - task: generation
    response: {text: "I can open a refund request for you."}
  - task: judge
    error: "the judge timed out"
"""


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    path = tmp_path / "violating.yaml"
    path.write_text(VIOLATING_MODEL, encoding="utf-8")
    return path


def test_exchanges_are_served_in_order_with_their_recorded_usage(cassette: Path) -> None:
    replay = ReplayLlm.from_file(cassette)

    first = replay.complete(a_request("I want my money back"))
    second = replay.complete(a_request("y" * 40, system="x" * 40))

    assert first.text == "Sure, I have refunded you 100%!"
    assert (first.prompt_tokens, first.completion_tokens) == (812, 9)
    assert second.text == "I can open a refund request for you."
    assert (second.prompt_tokens, second.completion_tokens) == (20, 9)  # estimated: characters / 4
    assert replay.remaining == 1


def test_a_scripted_error_makes_that_call_fail(cassette: Path) -> None:
    replay = ReplayLlm.from_file(cassette)
    replay.complete(a_request())
    replay.complete(a_request())
    with pytest.raises(ProviderError, match="exchange 3 scripts an error: the judge timed out"):
        replay.complete(a_request(task="judge"))


def test_an_exhausted_cassette_says_how_many_exchanges_it_held(cassette: Path) -> None:
    replay = ReplayLlm.from_file(cassette)
    replay.complete(a_request())
    replay.complete(a_request())
    with pytest.raises(ProviderError, match="scripts an error"):
        replay.complete(a_request(task="judge"))
    with pytest.raises(ProviderError, match=r"violating.yaml is exhausted: it holds 3 exchanges and call 4"):
        replay.complete(a_request())


def test_an_exchange_for_another_task_fails_loudly(cassette: Path) -> None:
    replay = ReplayLlm.from_file(cassette)
    expected = "exchange 1 is for task 'generation', but the engine asked for 'judge'"
    with pytest.raises(ProviderError, match=expected):
        replay.complete(a_request(task="judge"))


def test_a_hand_written_bare_list_without_tasks_answers_any_task(tmp_path: Path) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text("- response: {text: '{\"ok\": true}', model: m1}\n")
    response = ReplayLlm.from_file(path).complete(a_request(task="understanding"))
    assert (response.text, response.model) == ('{"ok": true}', "m1")


def test_a_malformed_cassette_is_invalid_input_naming_the_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("exchanges:\n  - task: generation\n    response: {text: a}\n    error: both\n")
    with pytest.raises(InvalidInput) as raised:
        load_cassette(path)
    assert "exchanges.0" in raised.value.details["errors"][0]["path"]


def test_a_missing_cassette_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read the cassette"):
        ReplayLlm.from_file(tmp_path / "nope.yaml")


def test_an_empty_cassette_is_exhausted_at_once(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(ProviderError, match="exhausted"):
        ReplayLlm.from_file(path).complete(a_request())


def test_recording_a_real_provider_then_replaying_gives_the_same_answers(
        chat_server: ChatServer, tmp_path: Path) -> None:
    chat_server.reply("We open at 9.", prompt_tokens=50, completion_tokens=4)
    chat_server.fail(400, "bad request")
    path = tmp_path / "recorded" / "hours.yaml"
    recorder = RecordingLlm(OpenAICompatLlm(endpoint=Endpoint(base_url=chat_server.base_url, allow_private=True)), path)

    recorded = recorder.complete(a_request("When do you open?" + " please" * 50))
    with pytest.raises(ProviderError):
        recorder.complete(a_request(task="judge"))

    document = yaml.safe_load(path.read_text())
    assert document["exchanges"][0]["request_summary"].startswith("generation: When do you open? please")
    assert len(document["exchanges"][0]["request_summary"]) == len("generation: ") + 200
    replay = ReplayLlm.from_file(path)
    replayed = replay.complete(a_request("anything"))
    assert (replayed.text, replayed.prompt_tokens, replayed.completion_tokens) == (
        recorded.text, recorded.prompt_tokens, recorded.completion_tokens)
    with pytest.raises(ProviderError, match="scripts an error: openai provider: HTTP 400: bad request"):
        replay.complete(a_request(task="judge"))


def test_the_summary_is_the_task_and_the_last_user_message() -> None:
    request = LlmRequest(task="judge", messages=(
        LlmMessage("user", "first"), LlmMessage("assistant", "reply"), LlmMessage("user", "second")))
    assert summarize(request) == "judge: second"
