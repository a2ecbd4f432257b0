"""The LLM judge: one call per draft for the hard constraints without an expression; fails closed."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.config import Config, EnforcementConfig, LlmConfig, LlmTasks, TaskModel
from chalicelib.focal.enforcement.judge import UNCONFIRMED, judge
from chalicelib.providers.llm import ProviderError
from chalicelib.providers.offline import OfflineLlm
from tests.focal.enforcement.doubles import ScriptedLlm
from tests.focal.factories import a_rule

COMPETITOR = a_rule("no_competitor", action="Never mention competitor AcmeCorp", hard_constraint=True)
TONE = a_rule("tone", action="Stay courteous and calm", hard_constraint=True)
PROMISE = a_rule("no_promise", action="Do not promise delivery dates", hard_constraint=True)
OPEN = Config(enforcement=EnforcementConfig(judge_fails_closed=False))


def answer(*verdicts: tuple[str, bool]) -> str:
    return json.dumps({"verdicts": [{"rule_id": rule_id, "complies": complies, "reason": "because"}
                                    for rule_id, complies in verdicts]})


def test_several_subjective_rules_are_judged_in_one_call() -> None:
    llm = ScriptedLlm(answer(("no_competitor", True), ("tone", False), ("no_promise", True)))
    result = judge("Fine, whatever.", [COMPETITOR, TONE, PROMISE], llm, Config())
    assert len(llm.requests) == 1
    assert result.llm_calls == 1
    assert (result.prompt_tokens, result.completion_tokens) == (100, 10)
    assert [violation.rule_id for violation in result.violations] == ["tone"]
    assert result.violations[0].lane == "judge"
    assert "Stay courteous and calm" in result.violations[0].message


def test_the_prompt_shows_each_rule_id_and_action_and_the_reply() -> None:
    llm = ScriptedLlm(answer(("no_competitor", True), ("tone", True)))
    judge("Your parcel ships on Monday.", [COMPETITOR, TONE], llm, Config())
    (prompt,) = llm.prompts("judge")
    for text in ("no_competitor", "Never mention competitor AcmeCorp", "tone", "Stay courteous and calm",
                 "Your parcel ships on Monday."):
        assert text in prompt
    request = llm.requests[0]
    assert request.json_schema is not None
    assert "verdicts" in request.json_schema["properties"]


def test_model_settings_come_from_the_judge_task_then_the_llm_section() -> None:
    config = Config(llm=LlmConfig(temperature=0.7, max_tokens=900,
                                  tasks=LlmTasks(judge=TaskModel(model="judge-model", temperature=None,
                                                                 max_tokens=None))))
    llm = ScriptedLlm(answer(("tone", True)))
    judge("ok", [TONE], llm, config)
    request = llm.requests[0]
    assert (request.model, request.temperature, request.max_tokens) == ("judge-model", 0.7, 900)
    llm = ScriptedLlm(answer(("tone", True)))
    judge("ok", [TONE], llm, Config())
    default = llm.requests[0]
    assert (default.model, default.temperature, default.max_tokens) == (None, 0.0, 300)


def test_no_rules_means_no_call() -> None:
    llm = ScriptedLlm()
    result = judge("anything", [], llm, Config())
    assert result.violations == ()
    assert llm.requests == []


def test_an_answer_in_a_code_fence_is_read() -> None:
    llm = ScriptedLlm("```json\n" + answer(("tone", False)) + "\n```")
    result = judge("Go away.", [TONE], llm, Config())
    assert [violation.rule_id for violation in result.violations] == ["tone"]


@pytest.mark.parametrize("unreadable", [
    "PASS", "{}", "[1, 2]", '{"verdicts": [{"rule_id": "tone", "complies": "yes"}]}'])
def test_an_unreadable_answer_is_a_violation_of_every_rule_when_failing_closed(unreadable: str) -> None:
    result = judge("Hello.", [COMPETITOR, TONE], ScriptedLlm(unreadable), Config())
    assert [violation.rule_id for violation in result.violations] == ["no_competitor", "tone"]
    assert all(violation.message.startswith(UNCONFIRMED) for violation in result.violations)


def test_an_unreadable_answer_passes_when_failing_open() -> None:
    result = judge("Hello.", [COMPETITOR, TONE], ScriptedLlm("I think it's fine"), OPEN)
    assert result.violations == ()
    assert result.llm_calls == 1


def test_a_rule_without_a_verdict_is_unconfirmed() -> None:
    llm = ScriptedLlm(answer(("tone", True), ("tone", False), ("someone_else", False)))
    result = judge("Hello.", [COMPETITOR, TONE], llm, Config())
    assert [(violation.rule_id, violation.message.startswith(UNCONFIRMED))
            for violation in result.violations] == [("no_competitor", True)]


def test_a_provider_error_fails_closed_or_open_as_configured() -> None:
    closed = judge("Hello.", [TONE], ScriptedLlm(ProviderError("timeout")), Config())
    assert [violation.rule_id for violation in closed.violations] == ["tone"]
    assert closed.llm_calls == 1
    opened = judge("Hello.", [TONE], ScriptedLlm(ProviderError("timeout")), OPEN)
    assert opened.violations == ()


def test_the_offline_provider_judges_with_the_heuristic_judge() -> None:
    llm = OfflineLlm()
    caught = judge("You might prefer acmecorp for that.", [COMPETITOR, TONE], llm, Config())
    assert [violation.rule_id for violation in caught.violations] == ["no_competitor"]
    clean = judge("We can help with that today.", [COMPETITOR, TONE], llm, Config())
    assert clean.violations == ()
