"""Understanding: a masked prompt, a robustly parsed answer, and the heuristic when the call fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.config import Config, LlmConfig, LlmTasks, TaskModel
from chalicelib.domain.interlocutor import FieldDefinition
from chalicelib.focal.extract import extract_values
from chalicelib.focal.types import Retrieved, ScoredItem, TurnContext
from chalicelib.focal.understand import heuristic_understanding, understand
from chalicelib.providers.llm import LlmRequest, LlmResponse, ProviderError
from tests.focal.factories import (
    a_bundle,
    a_context,
    a_field,
    a_published,
    a_rule,
    a_scenario,
    a_session,
    a_step,
    a_transition,
    an_interlocutor,
)

STORED_EMAIL = "jane.secret@example.com"


class RecordingLlm:
    """A test double of the LlmProvider port: records requests, answers from a script."""

    name = "recording"

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[LlmRequest] = []

    def complete(self, request: LlmRequest) -> LlmResponse:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return LlmResponse(text=answer, model="scripted", prompt_tokens=321, completion_tokens=45)


FIELDS = [
    a_field("email", "email", pii=True, description="contact address"),
    a_field("plan", "enum", values=["basic", "pro"]),
    a_field("order_id", pattern=r"ORD-\d{4}"),
]
SCENARIOS = [
    a_scenario(
        "returns",
        "the user wants to return an item",
        steps=[
            a_step(
                "reason",
                transitions=[
                    a_transition("label", condition="the user explains why the item is broken"),
                    a_transition("done", expression="plan == 'pro'"),
                    a_transition("done", condition="the user confirms the return"),
                ],
            ),
            a_step("label"),
            a_step("done"),
        ],
    ),
    a_scenario("cancel", "the user wants to cancel an order", steps=[a_step("s1")]),
]
RULES = [
    a_rule("refund", "the user asks for a refund", action="SECRET-ACTION-TEXT"),
    a_rule("hours", "the user asks about opening hours"),
]
PUBLISHED = a_published(a_bundle(rules=RULES, scenarios=SCENARIOS, fields=FIELDS))


def found(rules: dict[str, float] | None = None, scenarios: dict[str, float] | None = None) -> Retrieved:
    def items(kind: Any, scores: dict[str, float] | None) -> tuple[ScoredItem, ...]:
        return tuple(ScoredItem(kind, key, score, 0.0, score) for key, score in (scores or {}).items())

    return Retrieved(rules=items("rule", rules), scenarios=items("scenario", scenarios))


def context(message: str, **kwargs: Any) -> TurnContext:
    kwargs.setdefault("interlocutor", an_interlocutor({"email": STORED_EMAIL}))
    return a_context(message, published=PUBLISHED, **kwargs)


def answer(**fields: Any) -> str:
    return json.dumps(
        {
            "intent": "refund_request",
            "language": "fr",
            "values": {},
            "applicable_rules": [],
            "scenario_signal": "none",
            "scenario_id": None,
            "conditions_true": [],
            "confirmed": False,
            **fields,
        }
    )


def test_the_prompt_holds_the_schema_mask_and_never_a_stored_pii_value() -> None:
    llm = RecordingLlm(answer())
    ctx = context("I want a refund", history=[("user", "hi, I'm ‹email›"), ("agent", "Hello!")])
    understand(ctx, found({"refund": 0.6}, {"returns": 0.4}), llm)
    request = llm.requests[0]
    everything = json.dumps([message.content for message in request.messages]) + json.dumps(
        request.json_schema
    )
    assert STORED_EMAIL not in everything
    system = request.messages[0].content
    assert '{"name": "email", "type": "email", "description": "contact address", "has_value": true}' in system
    assert '"values": ["basic", "pro"]' in system
    assert "the user asks for a refund" in system and "SECRET-ACTION-TEXT" not in system
    assert "the user wants to return an item" in system
    assert [(message.role, message.content) for message in request.messages[1:]] == [
        ("user", "hi, I'm ‹email›"),
        ("assistant", "Hello!"),
        ("user", "I want a refund"),
    ]
    assert request.task == "understanding"
    assert request.json_schema is not None
    assert set(request.json_schema["properties"]["values"]["properties"]) == {"email", "plan", "order_id"}


def test_an_active_scenario_offers_its_step_transitions_and_the_other_scenarios_to_switch_to() -> None:
    llm = RecordingLlm(answer())
    ctx = context(
        "it is broken", session=a_session(scenario="returns", step="reason", pending_tool="refund_tool")
    )
    understand(ctx, found(scenarios={"cancel": 0.9, "returns": 0.5}), llm)
    system = llm.requests[0].messages[0].content
    assert "returns/reason/0" in system and "returns/reason/2" in system
    assert "returns/reason/1" not in system  # an expression transition is the engine's to evaluate
    # The other scenario is offered (the user may change their mind); the active one is not.
    assert '"candidate_scenarios": [{"id": "cancel"' in system
    assert '{"id": "returns", "condition"' not in system
    assert '"tool": "refund_tool"' in system


def test_a_model_may_switch_from_the_active_scenario_to_an_offered_one() -> None:
    llm = RecordingLlm(answer(scenario_signal="start", scenario_id="cancel"))
    ctx = context("actually cancel it instead", session=a_session(scenario="returns", step="reason"))
    understood = understand(ctx, found(scenarios={"cancel": 0.9}), llm)
    assert (understood.scenario_signal, understood.scenario_id) == ("start", "cancel")


def test_model_settings_come_from_the_understanding_task_then_the_llm_defaults() -> None:
    tuned = Config(
        llm=LlmConfig(
            temperature=0.9,
            max_tokens=700,
            tasks=LlmTasks(understanding=TaskModel(model="small", max_tokens=250)),
        )
    )
    llm = RecordingLlm(answer())
    understand(context("hi", config=tuned), found(), llm)
    request = llm.requests[0]
    assert (request.model, request.temperature, request.max_tokens) == ("small", 0.9, 250)


def test_the_answer_is_parsed_with_tokens_and_one_call_recorded() -> None:
    llm = RecordingLlm(
        answer(
            values={"plan": "pro", "email": None},
            applicable_rules=["refund"],
            scenario_signal="start",
            scenario_id="returns",
            confirmed=True,
        )
    )
    understood = understand(
        context("refund please, I am on pro"), found({"refund": 0.5}, {"returns": 0.5}), llm
    )
    assert understood.intent == "refund_request"
    assert understood.language == "fr"
    assert understood.values == {"plan": "pro"}
    assert understood.applicable_rules == ("refund",)
    assert (understood.scenario_signal, understood.scenario_id) == ("start", "returns")
    assert understood.confirmed is False  # nothing was awaiting confirmation
    assert (understood.llm_calls, understood.prompt_tokens, understood.completion_tokens) == (1, 321, 45)


def test_fenced_json_with_prose_around_is_accepted() -> None:
    text = "Sure!\n```json\n" + answer(applicable_rules=["refund"]) + "\n```"
    understood = understand(context("refund"), found({"refund": 0.5}), RecordingLlm(text))
    assert understood.applicable_rules == ("refund",)
    prose = "Here it is: " + answer(applicable_rules=["refund"]) + " hope it helps"
    assert understand(context("refund"), found({"refund": 0.5}), RecordingLlm(prose)).applicable_rules == (
        "refund",
    )


def test_ids_that_were_not_offered_are_dropped() -> None:
    llm = RecordingLlm(
        answer(
            applicable_rules=["refund", "made-up", "hours", "refund"],
            values={"shoe_size": 44, "plan": "basic"},
            scenario_signal="start",
            scenario_id="ghost",
            conditions_true=["returns/reason/0"],
            language="not a code",
        )
    )
    understood = understand(context("refund"), found({"refund": 0.5}), llm)
    assert understood.applicable_rules == ("refund",)  # "hours" was not retrieved
    assert understood.values == {"plan": "basic"}
    assert (understood.scenario_signal, understood.scenario_id) == ("none", None)
    assert understood.conditions_true == ()  # no active scenario, no transitions offered
    assert understood.language == "en"


def test_transitions_and_confirmation_are_kept_when_offered() -> None:
    llm = RecordingLlm(
        answer(
            scenario_signal="exit", conditions_true=["returns/reason/2", "returns/reason/1"], confirmed=True
        )
    )
    ctx = context("yes", session=a_session(scenario="returns", step="reason", pending_tool="refund_tool"))
    understood = understand(ctx, found(), llm)
    assert understood.scenario_signal == "exit"
    assert understood.conditions_true == ("returns/reason/2",)
    assert understood.confirmed is True


def test_a_signal_about_a_scenario_that_is_not_active_is_ignored() -> None:
    understood = understand(context("stop"), found(), RecordingLlm(answer(scenario_signal="exit")))
    assert understood.scenario_signal == "none"


@pytest.mark.parametrize(
    "reply", ["I think you want a refund", "[1, 2]", '{"scenario_signal": "maybe"}', "{oops"]
)
def test_an_unreadable_answer_falls_back_to_the_heuristic_but_counts_the_call(reply: str) -> None:
    ctx = context("I want a refund, my email is new@example.com")
    understood = understand(ctx, found({"refund": 0.2}), RecordingLlm(reply))
    assert understood.applicable_rules == ("refund",)
    assert understood.values == {"email": "new@example.com"}
    assert (understood.llm_calls, understood.prompt_tokens) == (1, 321)


def test_a_provider_error_falls_back_to_the_heuristic_and_never_fails_the_turn() -> None:
    llm = RecordingLlm(ProviderError("upstream 503"))
    understood = understand(context("I want to return an item"), found(scenarios={"returns": 0.6}), llm)
    assert (understood.scenario_signal, understood.scenario_id) == ("start", "returns")
    assert (understood.llm_calls, understood.prompt_tokens) == (1, 0)


def test_the_offline_answer_is_the_heuristic_as_json() -> None:
    llm = RecordingLlm(answer())
    ctx = context("order ORD-1234 please")
    understand(ctx, found({"hours": 0.1}), llm)
    offline = json.loads(llm.requests[0].offline_answer or "")
    assert offline["values"] == {"order_id": "ORD-1234"}
    assert offline["applicable_rules"] == []
    assert offline["scenario_signal"] == "none"


# The heuristic, field type by field type.


def extract(message: str, *fields: FieldDefinition, asked: tuple[str, ...] = ()) -> dict[str, Any]:
    return extract_values(message, list(fields), asked=asked)


def test_heuristic_reads_emails_phones_and_iso_dates() -> None:
    fields = (a_field("email", "email"), a_field("phone", "phone"), a_field("birthday", "date"))
    assert extract("born 1990-04-12, call +33 6 12 34 56 78 or mail Jo@Ex.com.", *fields) == {
        "email": "Jo@Ex.com",
        "phone": "+33 6 12 34 56 78",
        "birthday": "1990-04-12",
    }
    assert extract("no contact details here", *fields) == {}


def test_heuristic_reads_a_pattern_field_inside_the_message_before_numbers() -> None:
    fields = (a_field("order_id", pattern=r"^[A-Z]{3}-\d{4}$"), a_field("quantity", "integer"))
    assert extract("Order ABC-1234: I got 3 instead of 4", *fields) == {
        "order_id": "ABC-1234",
        "quantity": "3",
    }
    inside = a_field("ref", pattern=r"R\d{3}")
    assert extract("ref:R123, thanks", inside) == {"ref": "R123"}
    assert extract("ref:R123/x or xR123", inside) == {}  # inside longer tokens: not the field's value


def test_heuristic_assigns_numbers_by_field_name_when_there_are_several() -> None:
    fields = (a_field("age", "integer", maximum=130), a_field("budget", "number"))
    assert extract("my budget is 250.50 and my age is 41", *fields) == {"age": "41", "budget": "250.50"}
    assert extract("about 999", *fields) == {}
    assert extract("I am 200", a_field("age", "integer", maximum=130)) == {}  # out of range: not a value


def test_heuristic_reads_enum_and_list_values_mentioned_as_words() -> None:
    plan = a_field("plan", "enum", values=["basic", "pro"])
    toppings = a_field("toppings", "list", values=["ham", "olives", "cheese"])
    assert extract("switch me to PRO, not basic", plan) == {"plan": "pro"}  # the first mentioned
    assert extract("olives and ham but no pineapple", toppings) == {"toppings": ["olives", "ham"]}
    assert extract("professional", plan) == {}


def test_heuristic_reads_yes_or_no_only_for_booleans_mentioned_or_asked() -> None:
    consent = a_field("newsletter", "boolean")
    assert extract("yes", consent) == {}
    assert extract("yes", consent, asked=("newsletter",)) == {"newsletter": True}
    assert extract("no thanks to the newsletter", consent) == {"newsletter": False}
    assert extract("newsletter?", consent) == {}


def test_heuristic_confirms_rules_by_score_or_shared_word() -> None:
    understood = heuristic_understanding(
        context("what are your opening hours"), found({"refund": 0.5, "hours": 0.2})
    )
    assert understood.applicable_rules == ("refund", "hours")
    assert heuristic_understanding(context("hello"), found({"refund": 0.2})).applicable_rules == ()


def test_heuristic_starts_the_best_scenario_only_above_its_threshold() -> None:
    assert (
        heuristic_understanding(context("x"), found(scenarios={"returns": 0.5, "cancel": 0.4})).scenario_id
        == "returns"
    )
    weak = heuristic_understanding(context("x"), found(scenarios={"returns": 0.1}))
    assert (weak.scenario_signal, weak.scenario_id) == ("none", None)


def test_heuristic_exits_on_cancel_words_unless_cancelling_is_the_scenario() -> None:
    returns = a_session(scenario="returns", step="reason")
    assert heuristic_understanding(context("never mind", session=returns), found()).scenario_signal == "exit"
    assert (
        heuristic_understanding(context("it is broken", session=returns), found()).scenario_signal
        == "continue"
    )
    cancelling = a_session(scenario="cancel", step="s1")
    assert (
        heuristic_understanding(context("cancel it", session=cancelling), found()).scenario_signal
        == "continue"
    )


def test_heuristic_judges_transitions_by_overlap_and_confirmations_by_yes() -> None:
    returns = a_session(scenario="returns", step="reason")
    broken = heuristic_understanding(context("the screen is broken", session=returns), found())
    assert broken.conditions_true == ("returns/reason/0",)
    agreed = heuristic_understanding(context("yes", session=returns), found())
    assert agreed.conditions_true == ("returns/reason/2",)
    refused = heuristic_understanding(context("no I do not confirm", session=returns), found())
    assert refused.conditions_true == ()


def test_heuristic_confirms_only_what_the_agent_asked_to_confirm() -> None:
    pending = a_session(pending_tool="refund_tool")
    assert heuristic_understanding(context("yes, go ahead", session=pending), found()).confirmed is True
    assert heuristic_understanding(context("no, don't", session=pending), found()).confirmed is False
    assert heuristic_understanding(context("yes"), found()).confirmed is False


def test_a_list_field_is_asked_for_as_an_array_in_the_answer_schema() -> None:
    published = a_published(a_bundle(fields=[a_field("tags", "list"), a_field("age", "integer")]))
    llm = RecordingLlm(answer(values={"tags": ["a", "b"], "age": 3}))
    understood = understand(a_context("tags a and b", published=published), found(), llm)
    schema = llm.requests[0].json_schema
    assert schema is not None
    assert schema["properties"]["values"]["properties"]["tags"]["type"] == ["array", "null"]
    assert schema["properties"]["values"]["properties"]["age"]["type"] == ["integer", "null"]
    assert understood.values == {"tags": ["a", "b"], "age": 3}


def test_heuristic_answers_the_boolean_the_current_step_asks_for() -> None:
    steps = [a_step("consent", required=["newsletter"])]
    bundle = a_bundle(
        fields=[a_field("newsletter", "boolean")], scenarios=[a_scenario("signup", steps=steps)]
    )
    ctx = a_context(
        "yes please", published=a_published(bundle), session=a_session(scenario="signup", step="consent")
    )
    assert heuristic_understanding(ctx, found()).values == {"newsletter": True}


def test_heuristic_copes_with_a_session_in_a_scenario_the_bundle_no_longer_has() -> None:
    understood = heuristic_understanding(
        context("cancel", session=a_session(scenario="gone", step="s1")), found()
    )
    assert (understood.scenario_signal, understood.conditions_true) == ("exit", ())
    llm = RecordingLlm(answer(scenario_signal="continue"))
    assert (
        understand(context("ok", session=a_session(scenario="gone")), found(), llm).scenario_signal
        == "continue"
    )


def test_heuristic_judges_a_declining_transition_by_a_no() -> None:
    steps = [
        a_step("offer", transitions=[a_transition("bye", condition="the user declines the offer")]),
        a_step("bye"),
    ]
    bundle = a_bundle(scenarios=[a_scenario("upsell", steps=steps)])
    session = a_session(scenario="upsell", step="offer")
    no = heuristic_understanding(
        a_context("no thanks", published=a_published(bundle), session=session), found()
    )
    assert no.conditions_true == ("upsell/offer/0",)
    yes = heuristic_understanding(a_context("yes", published=a_published(bundle), session=session), found())
    assert yes.conditions_true == ()
