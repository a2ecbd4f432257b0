"""Whole turns through the HTTP API, with an OpenAI-compatible model played by a real HTTP server.

The app runs in-process (Chalice's test client) over moto; the model is tests/support/chat_server,
which answers scripted drafts, some violating the agent's hard constraint on purpose.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.harness import Api
from tests.support.chat_server import ChatServer

AGENT = "returns-desk"


def returns_agent(max_regeneration_attempts: int = 2, step_override: int | None = None) -> dict[str, Any]:
    step_config = {} if step_override is None else {"enforcement": {"max_regeneration_attempts": step_override}}
    return {
        "agent": {"name": "Returns desk", "description": "Helps customers return items.",
                  "config": {"enforcement": {"max_regeneration_attempts": max_regeneration_attempts}}},
        "fields": [
            {"name": "order_number", "type": "string", "pattern": "A[0-9]{5}", "description": "order number"},
            {"name": "email", "type": "email", "pii": True, "description": "email address"},
        ],
        "templates": [
            {"id": "hours", "mode": "exclusive", "text": "We are open 9am to 5pm, Monday to Friday."},
            {"id": "step_fallback", "mode": "fallback", "scope": "step", "scenario": "returns",
             "step": "identify", "text": "Let me pass order {{ order_number }} to a colleague."},
            {"id": "safe", "mode": "fallback", "text": "A colleague will get back to you shortly."},
        ],
        "rules": [
            {"id": "no_guarantees", "condition": "always", "action": "never guarantee an outcome",
             "hard_constraint": True, "expression": 'not contains(reply, "guarantee")'},
            {"id": "opening_hours", "condition": "the user asks about opening hours",
             "action": "give the opening hours", "templates": ["hours"]},
        ],
        "scenarios": [{
            "id": "returns", "condition": "the user wants to return an item", "entry_step": "identify",
            "steps": [
                {"id": "identify", "instruction": "Get the order number and email.",
                 "required_fields": ["order_number", "email"], "config": step_config,
                 "transitions": [{"to": "done", "expression": 'order_number != ""'}]},
                {"id": "done", "instruction": "Confirm the return.", "terminal": True},
            ],
        }],
    }


def understood(**overrides: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"intent": "return", "language": "en", "values": {}, "applicable_rules": [],
                              "scenario_signal": "none", "scenario_id": None, "conditions_true": [],
                              "confirmed": False}
    answer.update(overrides)
    return answer


@pytest.fixture
def model() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


class Desk:
    """One tenant of the app whose agent talks to the scripted model."""

    def __init__(self, api: Api, model: ChatServer) -> None:
        self.api, self.model = api, model
        _, self.key = api.new_tenant()
        secret = api.call("PUT", "/v1/secrets/model-key", self.key, {"value": "sk-test"})
        assert secret.status_code in (200, 204), secret.body
        config = {"llm": {"provider": "openai", "base_url": model.base_url, "api_key_secret": "model-key",
                          "max_retries": 1, "timeout_s": 1.0}}
        assert api.call("PUT", "/v1/config", self.key, config).status_code == 200

    def publish(self, bundle: dict[str, Any]) -> None:
        response = self.api.call("PUT", f"/v1/agents/{AGENT}", self.key, bundle)
        assert response.status_code == 200, response.body

    def turn(self, message: str, user: str = "u1") -> dict[str, Any]:
        response = self.api.call("POST", f"/v1/agents/{AGENT}/turns", self.key, {"user_id": user, "message": message})
        assert response.status_code == 200, response.body
        body: dict[str, Any] = response.json_body
        return body

    def records(self, session_id: str) -> list[dict[str, Any]]:
        response = self.api.call("GET", f"/v1/agents/{AGENT}/sessions/{session_id}/turns", self.key)
        assert response.status_code == 200, response.body
        turns: list[dict[str, Any]] = response.json_body["turns"]
        return turns

    def generation_prompts(self) -> list[str]:
        """The system+user text of every generation request the model received, in order."""
        prompts = []
        for body in self.model.bodies:
            if isinstance(body, dict) and "response_format" not in body:
                prompts.append("\n".join(message["content"] for message in body["messages"]))
        return prompts


@pytest.fixture
def desk(api: Api, model: ChatServer, monkeypatch: pytest.MonkeyPatch) -> Desk:
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")  # the model listens on 127.0.0.1
    from chalicelib.runtime.services import reset_services

    reset_services()
    return Desk(api, model)


@pytest.mark.parametrize("violations", [0, 1, 2])
def test_a_draft_after_k_violations_within_the_limit_is_sent(desk: Desk, violations: int) -> None:
    # GIVEN an agent allowing 2 regenerations, and a model that guarantees things k times
    desk.publish(returns_agent(max_regeneration_attempts=2))
    desk.model.reply_json(understood())
    for attempt in range(violations):
        desk.model.reply(f"I guarantee a refund (draft {attempt}).")
    desk.model.reply("Your return request is noted.")
    # WHEN the user writes
    body = desk.turn("I want my money back")
    # THEN the first compliant draft is sent, and the outcome counts the regenerations
    assert body["reply"] == "Your return request is noted."
    assert body["outcome"]["regeneration_attempts"] == violations
    assert body["outcome"]["fallback_used"] is False
    assert body["outcome"]["llm_calls"] == 2 + violations
    record = desk.records(body["session_id"])[-1]
    assert [len(attempt["violations"]) for attempt in record["attempts"]] == [1] * violations + [0]


def test_each_regeneration_prompt_carries_the_previous_reply_and_the_violation(desk: Desk) -> None:
    desk.publish(returns_agent(max_regeneration_attempts=2))
    desk.model.reply_json(understood())
    desk.model.reply("I guarantee a full refund.")
    desk.model.reply("We guarantee it, truly.")
    desk.model.reply("Your return request is noted.")
    desk.turn("I want my money back")
    first, second, third = desk.generation_prompts()
    assert "I guarantee a full refund." not in first
    assert "I guarantee a full refund." in second and "no_guarantees" in second
    assert "We guarantee it, truly." in third and "no_guarantees" in third


def test_more_violations_than_attempts_send_the_fallback_template_never_the_violation(desk: Desk) -> None:
    desk.publish(returns_agent(max_regeneration_attempts=1))
    desk.model.reply_json(understood())
    desk.model.reply("I guarantee a refund.")
    desk.model.reply("I still guarantee a refund.")
    body = desk.turn("I want my money back")
    assert body["reply"] == "A colleague will get back to you shortly."
    assert "guarantee" not in body["reply"]
    assert body["outcome"]["fallback_used"] is True
    assert body["outcome"]["regeneration_attempts"] == 1
    record = desk.records(body["session_id"])[-1]
    assert record["fallback_template_id"] == "safe"
    assert len(record["attempts"]) == 2


def test_zero_regenerations_means_one_generation_then_the_fallback(desk: Desk) -> None:
    desk.publish(returns_agent(max_regeneration_attempts=0))
    desk.model.reply_json(understood())
    desk.model.reply("I guarantee a refund.")
    body = desk.turn("I want my money back")
    assert body["outcome"]["fallback_used"] is True
    assert body["outcome"]["regeneration_attempts"] == 0
    assert len(desk.generation_prompts()) == 1


@pytest.mark.parametrize("failure", ["server_error", "timeout"])
def test_a_model_that_keeps_failing_ends_in_the_fallback_not_an_error(desk: Desk, failure: str) -> None:
    desk.publish(returns_agent())
    desk.model.reply_json(understood())
    for _ in range(2):  # the first try and its one retry
        if failure == "server_error":
            desk.model.fail(503)
        else:
            desk.model.stall(2.5)
    body = desk.turn("I want my money back")
    assert body["outcome"]["fallback_used"] is True
    assert body["reply"] == "A colleague will get back to you shortly."
    record = desk.records(body["session_id"])[-1]
    assert record["fallback_reason"] == "provider_error"


def test_an_exclusive_template_is_the_reply_without_a_generation_call(desk: Desk) -> None:
    desk.publish(returns_agent())
    desk.model.reply_json(understood(applicable_rules=["opening_hours"]))
    body = desk.turn("When are you open?")
    assert body["reply"] == "We are open 9am to 5pm, Monday to Friday."
    assert body["outcome"]["llm_calls"] == 1
    assert desk.generation_prompts() == []


def test_a_scenario_asks_for_required_fields_and_advances_when_they_are_given(desk: Desk) -> None:
    desk.publish(returns_agent())
    # Turn 1: the scenario starts and waits for the order number and email.
    desk.model.reply_json(understood(scenario_signal="start", scenario_id="returns"))
    desk.model.reply("Sure. What is your order number and email?")
    first = desk.turn("I'd like to return a jacket")
    assert first["outcome"]["scenario"] == {"id": "returns", "step": "identify"}
    # Turn 2: only the order number: still waiting for the email.
    desk.model.reply_json(understood(values={"order_number": "A12345"}))
    desk.model.reply("Thanks. And your email?")
    second = desk.turn("It's order A12345")
    assert second["outcome"]["scenario"] == {"id": "returns", "step": "identify"}
    # Turn 3: the email: the transition holds and the scenario completes on its terminal step.
    desk.model.reply_json(understood(values={"email": "jo@example.com"}))
    desk.model.reply("Thanks, your return for {{ order_number }} is registered.")
    third = desk.turn("jo@example.com")
    assert third["outcome"]["scenario"] == {"id": "returns", "step": "done"}
    assert third["reply"] == "Thanks, your return for A12345 is registered."
    records = desk.records(third["session_id"])
    assert records[-1]["scenario_trace"]["path"][-1] == "done"
    # The email is PII: the turn records mask it; once stored, no later prompt carries it (the
    # model reads only the user's own message, and the history it is shown is masked).
    assert "jo@example.com" not in json.dumps(records)
    seen = len(desk.model.bodies)
    desk.model.reply_json(understood())
    desk.model.reply("You're welcome, {{ email }} will get a confirmation.")
    fourth = desk.turn("thanks!")
    assert fourth["reply"] == "You're welcome, jo@example.com will get a confirmation."
    assert all("jo@example.com" not in json.dumps(body) for body in desk.model.bodies[seen:])


def test_a_step_level_override_changes_how_many_regenerations_a_turn_gets(desk: Desk) -> None:
    # The agent allows 2 regenerations, but the step the turn is in allows none.
    desk.publish(returns_agent(max_regeneration_attempts=2, step_override=0))
    desk.model.reply_json(understood(scenario_signal="start", scenario_id="returns"))
    desk.model.reply("I guarantee we'll sort it out.")
    body = desk.turn("I'd like to return a jacket")
    assert body["outcome"]["fallback_used"] is True
    assert body["outcome"]["regeneration_attempts"] == 0
    resolved = desk.api.call("GET", f"/v1/agents/{AGENT}/config/resolved?scenario=returns&step=identify", desk.key)
    assert resolved.json_body["provenance"]["enforcement.max_regeneration_attempts"] == "step"


def test_pii_never_reaches_the_logs_the_turn_records_or_a_later_prompt(
        desk: Desk, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
        log_lines: io.StringIO) -> None:
    desk.publish(returns_agent())
    desk.model.reply_json(understood(scenario_signal="start", scenario_id="returns",
                                     values={"email": "kim.pii@example.com", "order_number": "A55555"}))
    desk.model.reply("Thanks, I have noted {{ email }} for order {{ order_number }}.")
    body = desk.turn("Return order A55555 please, my email is kim.pii@example.com")
    assert body["reply"] == "Thanks, I have noted kim.pii@example.com for order A55555."
    desk.model.reply_json(understood())
    desk.model.reply("Anything else?")
    desk.turn("no thanks")
    records = json.dumps(desk.records(body["session_id"]), ensure_ascii=False)
    logs = capsys.readouterr()
    assert "turn committed" in log_lines.getvalue()  # the service's log lines were read
    assert "kim.pii@example.com" not in logs.out + logs.err + caplog.text + log_lines.getvalue()
    assert "kim.pii@example.com" not in records
    assert "‹email›" in records
    assert "A55555" in records  # not PII: kept as said
    later_prompts = json.dumps(desk.model.bodies[2:])
    assert "kim.pii@example.com" not in later_prompts


def test_a_regeneration_prompt_shows_stored_pii_as_placeholders_never_the_values(desk: Desk) -> None:
    desk.publish(returns_agent(max_regeneration_attempts=1))
    desk.model.reply_json(understood(values={"email": "lee.pii@example.com"}))
    desk.model.reply("Noted.")
    desk.turn("my email is lee.pii@example.com")
    seen = len(desk.model.bodies)
    desk.model.reply_json(understood())
    desk.model.reply("I guarantee we will email {{ email }} today.")
    desk.model.reply("We will email {{ email }} today.")
    body = desk.turn("will you send me a confirmation?")
    assert body["reply"] == "We will email lee.pii@example.com today."
    later = json.dumps(desk.model.bodies[seen:])
    assert "lee.pii@example.com" not in later
    assert "I guarantee we will email {{ email }} today." in later  # the previous reply, as the model wrote it


def test_a_session_of_another_user_is_not_found_and_a_bad_async_flag_is_refused(desk: Desk) -> None:
    desk.publish(returns_agent())
    desk.model.reply_json(understood())
    desk.model.reply("Hello Ana.")
    ana = desk.turn("hi", user="ana")
    as_bob = desk.api.call("POST", f"/v1/agents/{AGENT}/turns", desk.key,
                           {"user_id": "bob", "message": "hi", "session_id": ana["session_id"]})
    assert as_bob.status_code == 404
    flagged = desk.api.call("POST", f"/v1/agents/{AGENT}/turns?async=maybe", desk.key,
                            {"user_id": "ana", "message": "x"})
    assert flagged.status_code == 422 and flagged.json_body["error"]["details"]["errors"][0]["path"] == "async"


def test_after_a_delete_and_a_new_publish_turns_answer_from_the_new_bundle(desk: Desk) -> None:
    def agent(text: str) -> dict[str, Any]:
        bundle = returns_agent()
        bundle["templates"][0]["text"] = text  # the exclusive opening-hours answer
        return bundle

    desk.publish(agent("We open at nine."))
    desk.model.reply_json(understood(applicable_rules=["opening_hours"]))
    assert desk.turn("When are you open?")["reply"] == "We open at nine."  # cached in this container
    assert desk.api.call("DELETE", f"/v1/agents/{AGENT}", desk.key).status_code == 204
    desk.publish(agent("We open at ten."))
    desk.model.reply_json(understood(applicable_rules=["opening_hours"]))
    assert desk.turn("When are you open?")["reply"] == "We open at ten."
