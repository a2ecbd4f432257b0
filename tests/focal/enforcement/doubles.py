"""Test doubles for enforcement: a scripted LlmProvider and a regenerate callable built on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.domain.rule import Rule
from chalicelib.domain.template import Template
from chalicelib.domain.turn import Violation
from chalicelib.focal.types import Draft, Plan
from chalicelib.providers.llm import LlmRequest, LlmResponse, ProviderError


class ScriptedLlm:
    """An LlmProvider that answers queued texts in order (a ProviderError in the queue is raised)."""

    name = "scripted"

    def __init__(self, *answers: str | ProviderError) -> None:
        self.answers = list(answers)
        self.requests: list[LlmRequest] = []

    def complete(self, request: LlmRequest) -> LlmResponse:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected {request.task} call: the script is exhausted")
        answer = self.answers.pop(0)
        if isinstance(answer, ProviderError):
            raise answer
        return LlmResponse(text=answer, model="scripted", prompt_tokens=100, completion_tokens=10)

    def prompts(self, task: str) -> list[str]:
        return ["\n".join(message.content for message in request.messages)
                for request in self.requests if request.task == task]


class RecordingRegenerate:
    """The Regenerate callable: builds a feedback prompt, asks the provider, records what it got."""

    def __init__(self, llm: ScriptedLlm) -> None:
        self.llm = llm
        self.received: list[tuple[str, tuple[Violation, ...]]] = []

    def __call__(self, previous: str, violations: tuple[Violation, ...]) -> Draft:
        from chalicelib.providers.llm import LlmMessage

        self.received.append((previous, violations))
        listed = "\n".join(f"- {violation.rule_id}: {violation.message}" for violation in violations)
        prompt = f"Your previous reply was:\n{previous}\nIt broke these rules:\n{listed}\nWrite a new reply."
        request = LlmRequest(task="generation", messages=(LlmMessage("user", prompt),))
        try:
            response = self.llm.complete(request)
        except ProviderError:
            return Draft(reply="", llm_calls=1, failed=True)
        return Draft(reply=response.text, llm_calls=1, prompt_tokens=response.prompt_tokens,
                     completion_tokens=response.completion_tokens)


def a_plan(*, hard_rules: Sequence[Rule] = (), fallbacks: Sequence[Template] = (),
           variables: Mapping[str, Any] | None = None, exclusive: Template | None = None) -> Plan:
    return Plan(exclusive=exclusive, suggestions=(), instructions=(), step_instruction="", ask_fields=(),
                confirm_tool=None, hard_rules=tuple(hard_rules), fallbacks=tuple(fallbacks),
                variables=dict(variables or {}), handoff=False, draft="")


def a_draft(reply: str, *, llm_calls: int = 1, failed: bool = False) -> Draft:
    return Draft(reply=reply, llm_calls=llm_calls, prompt_tokens=50 if llm_calls else 0,
                 completion_tokens=5 if llm_calls else 0, failed=failed)
