"""Understand: the one structured LLM call of a turn (DESIGN.md §3, phase 2).

Says what the user wants and states, which retrieved rules truly apply, what happens to the
scenario, which transition conditions hold, and whether the user confirmed. The prompt carries a
schema mask of the interlocutor's fields, never a stored value. A failed or unreadable call falls
back to the deterministic heuristic: understanding never fails a turn.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.domain.interlocutor import FieldDefinition, FieldType
from chalicelib.focal.privacy import schema_mask
from chalicelib.focal.types import Retrieved, TurnContext, Understanding
from chalicelib.focal.understand_offline import heuristic_understanding, values_known
from chalicelib.providers.llm import LlmMessage, LlmProvider, LlmRequest, ProviderError, Role

__all__ = ["Answer", "Offer", "answer_schema", "build_request", "heuristic_understanding", "make_offer",
           "parse_answer", "understand"]

logger = Logger(child=True)

INSTRUCTIONS = """You read the latest message of a user talking to a customer-service agent.
Answer with one JSON object that follows the given schema, and nothing else.
- intent: a short snake_case label of what the user wants.
- language: the ISO 639-1 code of the user's message.
- values: for each field in `fields`, the value the user states in their messages, or null. Never
  guess and never copy a value from anywhere but the user's words.
- applicable_rules: ids of the `candidate_rules` whose condition truly holds for this message.
- scenario_signal: "start" to begin one of the `candidate_scenarios` (set scenario_id), also when
  the user clearly changes their mind from the active scenario to one of them; "exit" when the
  user wants to leave the active scenario, "continue" when it goes on, otherwise "none".
- conditions_true: ids of the `transitions` whose condition holds now.
- confirmed: true only when `awaiting_confirmation` is set and the user clearly says yes to it.
Context:
"""
_SIGNALS = ("none", "start", "continue", "exit")
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*(.*?)\s*```\s*$", re.DOTALL)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_JSON_TYPES = {FieldType.NUMBER: "number", FieldType.INTEGER: "integer", FieldType.BOOLEAN: "boolean"}


@dataclass(frozen=True, slots=True)
class Offer:
    """What the call is asked to judge: the only ids an answer may name."""

    fields: tuple[FieldDefinition, ...]
    rules: dict[str, str]  # candidate rule id -> condition
    scenarios: dict[str, str]  # candidate scenario id -> condition (all but the active one)
    transitions: dict[str, str]  # "<scenario>/<step>/<index>" -> condition
    active_scenario: str | None
    awaiting_confirmation: str | None  # the tool id the agent asked to confirm


class Answer(BaseModel):
    """The LLM's JSON, validated at the trust boundary. Unknown keys are ignored, not fatal."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    intent: str | None = ""
    language: str | None = "en"
    values: dict[str, Any] | None = None
    applicable_rules: list[str] | None = None
    scenario_signal: Literal["none", "start", "continue", "exit"] | None = "none"
    scenario_id: str | None = None
    conditions_true: list[str] | None = None
    confirmed: bool | None = False


def understand(ctx: TurnContext, retrieved: Retrieved, llm: LlmProvider) -> Understanding:
    """One LLM call; the heuristic answer when the provider fails or answers something unreadable.

    llm_calls is 1 whenever the call was attempted; tokens are those the provider reported.
    """
    offer = make_offer(ctx, retrieved)
    heuristic = heuristic_understanding(ctx, retrieved, rule_conditions=offer.rules)
    request = build_request(ctx, offer, offline_answer=json.dumps(_as_json(heuristic)))
    ids = {"tenant_id": ctx.tenant_id, "agent_id": ctx.agent_id, "session_id": ctx.session.session_id}
    try:
        response = llm.complete(request)
    except ProviderError as exc:
        logger.warning("understanding call failed; using the heuristic", extra={**ids, "error": exc.code})
        return replace(heuristic, llm_calls=1)
    parsed = parse_answer(response.text, offer)
    if parsed is None:
        logger.warning("unreadable understanding answer; using the heuristic", extra=ids)
    return replace(parsed or heuristic, llm_calls=1, prompt_tokens=response.prompt_tokens,
                   completion_tokens=response.completion_tokens)


def make_offer(ctx: TurnContext, retrieved: Retrieved) -> Offer:
    bundle = ctx.published.bundle
    # Only the retrieved rules: per-turn work grows with what retrieval returns, not with the agent.
    rules = {item.item_id: rule.condition for item in retrieved.rules if (rule := bundle.rule(item.item_id))}
    state = ctx.session.scenario
    transitions: dict[str, str] = {}
    # Offered even inside a scenario (all but the active one): the user may switch flows.
    scenarios = {item.item_id: scenario.condition for item in retrieved.scenarios
                 if (state is None or item.item_id != state.scenario_id)
                 and (scenario := bundle.scenario(item.item_id)) is not None}
    if state is not None:
        scenario = bundle.scenario(state.scenario_id)
        step = scenario.step(state.step_id) if scenario is not None else None
        for position, transition in enumerate(step.transitions if step is not None else ()):
            if transition.condition is not None:
                transitions[f"{state.scenario_id}/{state.step_id}/{position}"] = transition.condition
    pending = ctx.session.pending_confirmation
    return Offer(fields=tuple(bundle.fields), rules=rules, scenarios=scenarios, transitions=transitions,
                 active_scenario=state.scenario_id if state is not None else None,
                 awaiting_confirmation=pending.tool_id if pending is not None else None)


def build_request(ctx: TurnContext, offer: Offer, *, offline_answer: str | None = None) -> LlmRequest:
    """The prompt: instructions + masked context, the (already masked) history, then the message."""
    context = {
        "fields": schema_mask(offer.fields, values_known(ctx)),
        "candidate_rules": [{"id": key, "condition": text} for key, text in offer.rules.items()],
        "active_scenario": offer.active_scenario,
        "candidate_scenarios": [{"id": key, "condition": text} for key, text in offer.scenarios.items()],
        "transitions": [{"id": key, "condition": text} for key, text in offer.transitions.items()],
        "awaiting_confirmation": ({"tool": offer.awaiting_confirmation}
                                  if offer.awaiting_confirmation else None),
    }
    messages = [LlmMessage("system", INSTRUCTIONS + json.dumps(context, ensure_ascii=False))]
    messages += [LlmMessage(_role(role), text) for role, text in ctx.history if text]
    messages.append(LlmMessage("user", ctx.turn.message))
    llm = ctx.config.llm
    task = llm.tasks.understanding
    return LlmRequest(
        task="understanding", messages=tuple(messages), model=task.model,
        temperature=task.temperature if task.temperature is not None else llm.temperature,
        max_tokens=task.max_tokens if task.max_tokens is not None else llm.max_tokens,
        json_schema=answer_schema(offer), timeout_s=llm.timeout_s, max_retries=llm.max_retries,
        offline_answer=offline_answer)


def answer_schema(offer: Offer) -> dict[str, Any]:
    """JSON schema of the answer, naming this agent's fields so a strict provider can enforce it."""
    values = {field.name: _value_schema(field) for field in offer.fields}
    strings = {"type": "array", "items": {"type": "string"}}
    properties: dict[str, Any] = {
        "intent": {"type": "string"},
        "language": {"type": "string"},
        "values": {"type": "object", "properties": values, "required": list(values),
                   "additionalProperties": False},
        "applicable_rules": strings,
        "scenario_signal": {"type": "string", "enum": list(_SIGNALS)},
        "scenario_id": {"type": ["string", "null"]},
        "conditions_true": strings,
        "confirmed": {"type": "boolean"},
    }
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def parse_answer(text: str, offer: Offer) -> Understanding | None:
    """The answer as an Understanding with every id not offered dropped; None when unreadable."""
    document = _json_object(text)
    if document is None:
        return None
    try:
        answer = Answer.model_validate(document)
    except ValidationError:
        return None
    names = {field.name for field in offer.fields}
    values = {name: value for name, value in (answer.values or {}).items()
              if name in names and value is not None}
    signal = answer.scenario_signal or "none"
    scenario_id = answer.scenario_id if signal == "start" and answer.scenario_id in offer.scenarios else None
    if signal == "start" and scenario_id is None:
        signal = "none"  # no scenario we offered: nothing to start
    elif signal in ("continue", "exit") and not offer.active_scenario:
        signal = "none"
    language = (answer.language or "").strip().lower()
    return Understanding(
        intent=(answer.intent or "").strip()[:80],
        language=language if _LANGUAGE.match(language) else "en",
        values=values,
        applicable_rules=tuple(dict.fromkeys(rule for rule in answer.applicable_rules or ()
                                             if rule in offer.rules)),
        scenario_signal=signal, scenario_id=scenario_id,
        conditions_true=tuple(dict.fromkeys(key for key in answer.conditions_true or ()
                                            if key in offer.transitions)),
        confirmed=bool(answer.confirmed) and offer.awaiting_confirmation is not None)


def _json_object(text: str) -> dict[str, Any] | None:
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    if not body.startswith("{"):  # prose around the object: take the outermost braces
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            return None
        body = body[start:end + 1]
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _value_schema(field: FieldDefinition) -> dict[str, Any]:
    if field.type is FieldType.LIST:
        return {"type": ["array", "null"], "items": {"type": "string"}}
    schema: dict[str, Any] = {"type": [_JSON_TYPES.get(field.type, "string"), "null"]}
    if field.description:
        schema["description"] = field.description
    return schema


def _role(role: str) -> Role:
    return "user" if role == "user" else "assistant"


def _as_json(understanding: Understanding) -> dict[str, Any]:
    return {
        "intent": understanding.intent, "language": understanding.language,
        "values": dict(understanding.values), "applicable_rules": list(understanding.applicable_rules),
        "scenario_signal": understanding.scenario_signal, "scenario_id": understanding.scenario_id,
        "conditions_true": list(understanding.conditions_true), "confirmed": understanding.confirmed,
    }
