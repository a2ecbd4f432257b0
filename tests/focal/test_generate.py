"""Generation: the prompt built from the plan, regeneration feedback, placeholders and formatting."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.config import Config, LlmConfig, LlmTasks, ResponseConfig, TaskModel
from chalicelib.domain.turn import Violation
from chalicelib.focal.generate import fill_placeholders, generate, render_exclusive
from chalicelib.focal.plan import allowed_placeholders
from chalicelib.focal.types import Plan, TurnContext
from chalicelib.providers.llm import LlmRequest, LlmResponse, ProviderError
from tests.focal.factories import a_bundle, a_context, a_field, a_published, a_rule, a_template, a_tool


class RecordingLlm:
    """A test double of the LlmProvider port: records each request and answers a scripted text."""

    name = "recording"

    def __init__(self, answer: str | None = None, *, fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail
        self.requests: list[LlmRequest] = []

    def complete(self, request: LlmRequest) -> LlmResponse:
        self.requests.append(request)
        if self.fail:
            raise ProviderError("the model is down")
        text = self.answer if self.answer is not None else (request.offline_answer or "")
        return LlmResponse(text=text, model="m", prompt_tokens=120, completion_tokens=30)

    def prompt(self) -> str:
        return "\n".join(message.content for message in self.requests[-1].messages)


def a_plan(**fields: object) -> Plan:
    values: dict[str, object] = dict(
        exclusive=None,
        suggestions=(),
        instructions=(),
        step_instruction="",
        ask_fields=(),
        confirm_tool=None,
        hard_rules=(),
        fallbacks=(),
        variables={},
        handoff=False,
        draft="Hello there.",
    )
    values.update(fields)
    return Plan(**values)  # type: ignore[arg-type]


def context(message: str = "I want to cancel my order", **kwargs: object) -> TurnContext:
    bundle = a_bundle(
        name="Ruby",
        fields=[a_field("order_id", description="order number"), a_field("email")],
        tools=[a_tool("cancel", description="Cancel the order")],
    )
    return a_context(message, published=a_published(bundle), **kwargs)  # type: ignore[arg-type]


def test_the_prompt_carries_the_plan_history_and_the_users_message() -> None:
    llm = RecordingLlm()
    hard = a_rule("no_promises", action="never promise a delivery date", hard_constraint=True)
    plan = a_plan(
        instructions=("apologise for the delay",),
        step_instruction="identify the order",
        ask_fields=("order_id",),
        confirm_tool="cancel",
        hard_rules=(hard,),
        suggestions=(a_template("s", "Sorry about {{ order_id }}"),),
        variables={"email": "ada@example.com", "tools": {"lookup": {"status": "late"}}},
    )

    generate(plan, context(history=[("user", "hi"), ("agent", "Hello! How can I help?")]), llm)

    request = llm.requests[0]
    system = request.messages[0].content
    assert request.task == "generation"
    assert [m.role for m in request.messages] == ["system", "user", "assistant", "user"]
    assert request.messages[-1].content == "I want to cancel my order"
    for expected in (
        "Ruby",
        "apologise for the delay",
        "identify the order",
        "order_id (order number)",
        "Cancel the order",
        "Sorry about {{ order_id }}",
        "never promise a delivery date",
        "write placeholders like {{ email }}",
        "{{ tools.lookup.status }}",
    ):
        assert expected.lower() in system.lower()
    assert "ada@example.com" not in llm.prompt()


def test_model_settings_come_from_the_generation_task_then_the_llm_section() -> None:
    tasked = Config(
        llm=LlmConfig(tasks=LlmTasks(generation=TaskModel(model="big", temperature=0.9, max_tokens=99)))
    )
    defaults = Config(llm=LlmConfig(temperature=0.1, max_tokens=321))
    llm = RecordingLlm()

    generate(a_plan(), context(config=tasked), llm)
    generate(a_plan(), context(config=defaults), llm)

    first, second = llm.requests
    assert (first.model, first.temperature, first.max_tokens) == ("big", 0.9, 99)
    assert (second.model, second.temperature, second.max_tokens) == (None, 0.1, 321)


def test_the_offline_answer_is_the_plans_draft() -> None:
    llm = RecordingLlm()

    draft = generate(a_plan(draft="Could you tell me your order number?"), context(), llm)

    assert llm.requests[0].offline_answer == "Could you tell me your order number?"
    assert draft.reply == "Could you tell me your order number?"
    assert (draft.llm_calls, draft.prompt_tokens, draft.completion_tokens, draft.failed) == (
        1,
        120,
        30,
        False,
    )


def test_a_regeneration_prompt_holds_the_previous_reply_and_the_enumerated_violations() -> None:
    llm = RecordingLlm("A compliant reply.")
    violations = (
        Violation(rule_id="max_refund", message="offers more than 50"),
        Violation(rule_id="no_promises", message="promises a date", lane="judge"),
    )

    draft = generate(
        a_plan(draft="Offline again."), context(), llm, feedback=("We refund you $80 by Monday!", violations)
    )

    prompt = llm.prompt()
    assert "We refund you $80 by Monday!" in prompt
    assert "1. max_refund: offers more than 50" in prompt
    assert "2. no_promises: promises a date" in prompt
    assert "fixes all of them" in prompt
    assert llm.requests[0].offline_answer == "Offline again."
    assert draft.reply == "A compliant reply."


def test_placeholders_are_filled_after_generation_and_missing_ones_removed() -> None:
    llm = RecordingLlm(
        "We will write to {{ email }} about order {{order_id}}{{ phone }}. Status: {{ tools.lookup.status }}"
    )
    plan = a_plan(
        variables={"email": "ada@example.com", "order_id": "A1", "tools": {"lookup": {"status": "late"}}}
    )

    draft = generate(plan, context(), llm)

    assert draft.reply == "We will write to ada@example.com about order A1. Status: late"


def test_the_reply_is_formatted_for_the_channel() -> None:
    llm = RecordingLlm("**Done!** See [the page](https://x.example).")
    config = Config(response=ResponseConfig(format="plain"))

    assert generate(a_plan(), context(config=config), llm).reply == "Done! See the page (https://x.example)."


def test_a_provider_error_gives_a_failed_empty_draft() -> None:
    draft = generate(a_plan(), context(), RecordingLlm(fail=True))

    assert (draft.reply, draft.failed, draft.llm_calls) == ("", True, 1)


def test_an_exclusive_template_is_rendered_and_formatted_without_a_model() -> None:
    template = a_template("x", "**Hi** {{ name }}, your code is {{ code }}.")
    plan = a_plan(exclusive=template, variables={"name": "Ada"})

    assert render_exclusive(plan, ResponseConfig(format="plain")) == "Hi Ada, your code is ."
    with pytest.raises(ValueError, match="no exclusive"):
        render_exclusive(replace(plan, exclusive=None), ResponseConfig())


def test_fill_placeholders_renders_lists_and_booleans() -> None:
    assert fill_placeholders("{{ items }} / {{ ok }}", {"items": ["a", "b"], "ok": True}) == "a, b / yes"


def test_the_prompt_describes_the_agent_and_announces_a_handoff() -> None:
    bundle = a_bundle(name="Ruby", fields=[a_field("zip")])
    bundle = bundle.model_copy(
        update={"agent": bundle.agent.model_copy(update={"description": "Sells shoes."})}
    )
    llm = RecordingLlm()

    generate(a_plan(handoff=True, ask_fields=("zip",)), a_context(published=a_published(bundle)), llm)

    system = llm.requests[0].messages[0].content
    assert "Sells shoes." in system
    assert "human colleague will take over" in system
    assert "Ask the user for: zip." in system


def test_a_value_that_reads_like_a_placeholder_is_inserted_as_text_not_filled_again() -> None:
    variables = {"nickname": "{{ risk_note }}", "risk_note": "flagged"}
    assert fill_placeholders("Hi {{ nickname }}", variables) == "Hi {{ risk_note }}"


def test_a_model_may_fill_only_the_placeholders_the_plan_allows() -> None:
    # GIVEN an internal PII note only the API sets, the user's own email, and a template naming neither
    bundle = a_bundle(fields=[a_field("email", "email", pii=True),
                              a_field("risk_note", pii=True, sources=["api"]), a_field("order_id")])
    variables = {"email": "ada@example.com", "risk_note": "flagged", "order_id": "A1"}
    allowed = allowed_placeholders(bundle, variables, [a_template("t", "Order {{ order_id }}")])
    llm = RecordingLlm("{{ order_id }} / {{ email }} / [{{ risk_note }}]")
    # WHEN the model writes the note's placeholder (say, echoing what the user typed)
    draft = generate(a_plan(variables=variables, placeholders=allowed),
                     a_context(published=a_published(bundle)), llm)
    # THEN it is removed, and the prompt never offered it
    assert draft.reply == "A1 / ada@example.com / []"
    assert "{{ risk_note }}" not in llm.prompt()
    # ... unless one of the plan's templates names it: the tenant chose to show it there
    assert "risk_note" in allowed_placeholders(bundle, variables, [a_template("t", "Note: {{ risk_note }}")])
