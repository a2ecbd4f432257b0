"""`ruche chat` and `ruche explain` against the app served over real HTTP (moto in-process)."""

from __future__ import annotations

import re

import pytest

from chalicelib.cli.trace import format_record, outcome_line
from chalicelib.domain.turn import Attempt, Outcome, ScenarioPosition, ScenarioTrace, ToolCall, TurnRecord, Violation
from tests.cli.conftest import EXAMPLES, Stack, ruche

RETAIL = EXAMPLES / "retail-returns.yaml"


@pytest.fixture
def published(stack: Stack) -> Stack:
    result = ruche("push", str(RETAIL), "--agent", "returns", "--url", stack.url, "--key", stack.key)
    assert result.exit_code == 0, result.output
    return stack


def chat(stack: Stack, text: str, *extra: str) -> str:
    result = ruche("chat", "returns", "--url", stack.url, "--key", stack.key, *extra, input=text)
    assert result.exit_code == 0, result.output
    return result.stdout


def session_of(output: str) -> str:
    found = re.search(r"session (ses_\w+)", output)
    assert found is not None, output
    return found.group(1)


def test_each_chat_reply_is_followed_by_its_outcome_line(published: Stack) -> None:
    output = chat(published, "When are you open?\nI want to return an item and get a refund for my order\n/quit\n")

    assert "agent> Our customer care team is available Monday to Friday" in output
    assert "rules: opening_hours · scenario: none · regenerations: 0 · fallback: no · LLM calls: 1" in output
    assert "scenario: return_request/identify_order" in output
    assert f"ruche explain {session_of(output)} --agent returns" in output


def test_chat_ends_at_the_end_of_input_and_skips_blank_lines(published: Stack) -> None:
    output = chat(published, "\n\nWhen are you open?")

    assert output.count("agent> ") == 1


def test_chat_can_continue_a_session_and_goes_silent_after_a_handoff(published: Stack) -> None:
    first = chat(published, "Can I talk to a human please?\n")
    user = re.search(r"--user (\S+)", first)
    assert user is not None, first
    again = chat(published, "Hello?\n", "--user", user.group(1), "--session", session_of(first))

    assert "handed off to a human" in first
    assert "agent> (silent: a human has the conversation)" in again


def test_continuing_a_session_without_its_user_is_a_usage_error(published: Stack) -> None:
    result = ruche("chat", "returns", "--session", "ses_x", "--url", published.url, "--key", published.key,
                   input="hi\n")
    assert result.exit_code == 2 and "--session needs --user" in result.output


def test_chat_with_an_unknown_agent_is_one_line_and_exit_2(published: Stack) -> None:
    result = ruche("chat", "nope", "--url", published.url, "--key", published.key, input="hi\n")

    assert result.exit_code == 2
    assert result.stderr.strip().startswith("ruche: ") and "'nope'" in result.stderr
    assert "Traceback" not in result.output


def test_explain_shows_why_the_last_reply_was_made(published: Stack) -> None:
    session = session_of(chat(published, "When are you open?\nCan I talk to a human please?\n"))

    result = ruche("explain", session, "--agent", "returns", "--url", published.url, "--key", published.key)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("turn 2 ")
    assert re.search(r"✓ human_request\s+\d\.\d{3}\s+applies", result.stdout)
    assert "attempt 1: compliant" in result.stdout
    assert "fallback: not used" in result.stdout
    assert "timings: retrieve" in result.stdout


def test_explain_finds_the_agent_of_a_session_when_it_is_not_given(published: Stack) -> None:
    session = session_of(chat(published, "When are you open?\n"))
    found = ruche("explain", session, "--url", published.url, "--key", published.key)
    missing = ruche("explain", "ses_nope", "--url", published.url, "--key", published.key)
    assert found.exit_code == 0, found.output
    assert found.stdout.startswith("turn 1 ")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "ruche: session 'ses_nope' not found in any agent of this tenant"


def test_explain_all_and_one_turn_by_id(published: Stack) -> None:
    session = session_of(
        chat(published, "When are you open?\nI want to return an item and get a refund for my order\n")
    )
    every = ruche("explain", session, "--all", "--agent", "returns", "--url", published.url, "--key", published.key)
    first_id = re.search(r"turn 1 · (turn_\w+)", every.stdout)
    assert first_id is not None

    one = ruche(
        "explain", session, first_id.group(1), "--agent", "returns", "--url", published.url, "--key", published.key
    )

    assert "turn 2 " in every.stdout and "scenario: return_request start (- -> identify_order)" in every.stdout
    assert one.stdout.startswith("turn 1 ") and "turn 2 " not in one.stdout


def test_explain_masks_pii_as_the_records_do(published: Stack) -> None:
    session = session_of(
        chat(
            published,
            "I want to return an item and get a refund for my order\nOrder NW-204518, email ana@example.com\n",
        )
    )

    result = ruche("explain", session, "--agent", "returns", "--url", published.url, "--key", published.key)

    assert "ana@example.com" not in result.stdout
    assert "field email = ‹email›" in result.stdout


def test_explain_of_an_unknown_session_or_turn_is_one_line_and_exit_2(published: Stack) -> None:
    session = session_of(chat(published, "When are you open?\n"))
    unknown_session = ruche("explain", "ses_nope", "--agent", "returns", "--url", published.url, "--key", published.key)
    unknown_turn = ruche(
        "explain", session, "turn_nope", "--agent", "returns", "--url", published.url, "--key", published.key
    )

    assert unknown_session.exit_code == 2
    assert unknown_session.stderr.strip() == "ruche: session 'ses_nope' of agent 'returns' not found (not_found)"
    assert unknown_turn.exit_code == 2
    assert f"session {session!r} has no turn 'turn_nope'" in unknown_turn.stderr


def test_a_trace_shows_violations_tool_calls_and_the_fallback_decision() -> None:
    record = TurnRecord(
        turn_id="turn_1",
        session_id="ses_1",
        tenant_id="t",
        agent_id="a",
        agent_version=3,
        interlocutor_id="i",
        turn_number=1,
        channel="api",
        message="refund me",
        reply="Sorry.",
        outcome=Outcome(
            rules=["refund_cap"],
            scenario=ScenarioPosition(id="returns", step="ask"),
            regeneration_attempts=2,
            fallback_used=True,
            llm_calls=4,
        ),
        attempts=[Attempt(reply="$900", violations=[Violation(rule_id="refund_cap", message="too much")])],
        tool_calls=[ToolCall(tool_id="lookup", status="timeout", idempotency_key="k", attempts=3, error="slow")],
        scenario_trace=ScenarioTrace(
            action="transition",
            scenario_id="returns",
            from_step="a",
            to_step="c",
            path=["a", "b", "c"],
            missing_fields=["email"],
        ),
        fields_rejected={"email": "is not an email address"},
        fallback_template_id="sorry",
        fallback_reason="violations",
    )

    text = format_record(record)

    assert "✗ refund_cap (expression): too much" in text
    assert "tool lookup: timeout (3 attempts, 0 ms): slow" in text
    assert "scenario: returns transition (a -> c) via a -> b -> c" in text
    assert "still missing: email" in text
    assert "field email rejected: is not an email address" in text
    assert "fallback: sorry because of violations" in text
    assert outcome_line(record.outcome) == (
        "rules: refund_cap · scenario: returns/ask · regenerations: 2 · fallback: yes · LLM calls: 4"
    )
