"""What a finished turn writes: the new session state and the turn record (PII masked).

Pure: builds values from the FOCAL result (or, for a silent or refused turn, from the turn's facts
alone); runtime/execute.py commits them in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.domain.bundle import PublishedBundle
from chalicelib.domain.interlocutor import FieldDefinition
from chalicelib.domain.session import RuleUsage, ScenarioState, Session, SessionStatus
from chalicelib.domain.turn import (
    Attempt,
    Outcome,
    RuleTrace,
    ScenarioPosition,
    ScenarioTrace,
    ToolCall,
    TurnRecord,
)
from chalicelib.focal.pipeline import FocalResult
from chalicelib.focal.privacy import all_versions, mask_text, masked_values
from chalicelib.focal.types import ScenarioDecision

ENDED_ACTIONS = ("exit", "complete")


@dataclass(frozen=True, slots=True)
class TurnFacts:
    """What a turn's record and the session after it say besides FOCAL's result: which turn of
    which session of which agent version, what the user said, and when."""

    turn_id: str
    published: PublishedBundle
    session: Session  # before the turn
    message: str
    now_iso: str
    now_s: float

    @property
    def turn_number(self) -> int:
        return self.session.turn_count + 1

    @property
    def fields(self) -> list[FieldDefinition]:
        return self.published.bundle.fields


def outcome_of(result: FocalResult) -> Outcome:
    scenario = result.scenario
    position = None
    if scenario.scenario_id and scenario.step_id and scenario.action not in ("exit", "none"):
        position = ScenarioPosition(id=scenario.scenario_id, step=scenario.step_id)
    return Outcome(
        rules=list(result.selected_rules),
        scenario=position,
        regeneration_attempts=result.enforced.regeneration_attempts,
        fallback_used=result.enforced.fallback_used,
        llm_calls=result.llm_calls,
        handoff=result.plan.handoff,
    )


def next_session(result: FocalResult, facts: TurnFacts) -> Session:
    """The session after this turn: one version later, the scenario moved, rules' usage counted."""
    session, turn_number, fields = facts.session, facts.turn_number, facts.fields
    message, reply, history_turns = facts.message, result.enforced.reply, result.config.session.history_turns
    usage = dict(session.rule_usage)
    for rule_id in result.selected_rules:
        before = usage.get(rule_id, RuleUsage())
        usage[rule_id] = RuleUsage(fires=before.fires + 1, last_turn=turn_number)
    known = masking_values(result)
    history = [*session.history,
               {"role": "user", "text": mask_text(message, fields, known)},
               {"role": "agent", "text": mask_text(reply, fields, known)}]
    return session.model_copy(update={
        "version": session.version + 1,
        "turn_count": turn_number,
        "scenario": _scenario_state(session.scenario, result.scenario, turn_number),
        "rule_usage": usage,
        "variables": dict(result.session_values),
        "pending_confirmation": result.tools.confirmation_request,
        "history": history[-2 * history_turns:] if history_turns else [],
        "status": SessionStatus.HANDOFF if result.plan.handoff else session.status,
        "updated_at": facts.now_iso,
        "last_activity_s": facts.now_s,
    })


def bumped_session(facts: TurnFacts) -> Session:
    """The session after a turn FOCAL did not run (silent, refused): counted, nothing else moves."""
    return facts.session.model_copy(update={"version": facts.session.version + 1, "turn_count": facts.turn_number,
                                            "updated_at": facts.now_iso, "last_activity_s": facts.now_s})


def _scenario_state(before: ScenarioState | None, decision: ScenarioDecision,
                    turn_number: int) -> ScenarioState | None:
    if decision.action in ENDED_ACTIONS or decision.scenario_id is None or decision.step_id is None:
        return None
    if before is not None and before.scenario_id == decision.scenario_id and before.step_id == decision.step_id:
        return before
    return ScenarioState(scenario_id=decision.scenario_id, step_id=decision.step_id, entered_turn=turn_number)


def masking_values(result: FocalResult) -> dict[str, list[Any]]:
    """Every version of each field this turn knows: after tools, before them, and what it superseded."""
    after = {**result.data.known, **{change.name: change.value for change in result.field_changes},
             **result.session_values}
    return all_versions(after, result.data.known, result.data.replaced)


def turn_record(result: FocalResult, facts: TurnFacts) -> TurnRecord:
    """The audit trail of one turn. Every text in it has PII values masked; no value is kept."""
    fields = facts.fields
    known: Mapping[str, Any] = {**result.data.known, **{c.name: c.value for c in result.field_changes}}
    versions = masking_values(result)

    def masked(text: str) -> str:
        return mask_text(text, fields, versions)

    enforced = result.enforced
    decisions = {decision.rule_id: decision for decision in result.decisions}
    scores = {item.item_id: item.score for item in result.retrieved.rules}
    retrieved = [RuleTrace(rule_id=rule_id, score=round(scores.get(rule_id, decision.score), 4),
                           selected=decision.selected, reason=decision.reason)
                 for rule_id, decision in decisions.items()]
    retrieved += [RuleTrace(rule_id=item.item_id, score=round(item.score, 4), selected=False, reason="not_a_candidate")
                  for item in result.retrieved.rules if item.item_id not in decisions]
    scenario = result.scenario
    return TurnRecord(
        **_ids(facts), message=masked(facts.message), reply=masked(enforced.reply), outcome=outcome_of(result),
        attempts=[Attempt(reply=masked(attempt.reply), violations=list(attempt.violations),
                          not_applicable=list(attempt.not_applicable)) for attempt in enforced.attempts],
        tool_calls=[ToolCall(tool_id=outcome.tool_id, status=outcome.status, idempotency_key=outcome.idempotency_key,
                             attempts=outcome.attempts, latency_ms=round(outcome.latency_ms, 2),
                             error=outcome.error) for outcome in result.tools.outcomes],
        retrieved=retrieved,
        scenario_trace=ScenarioTrace(action=scenario.action, scenario_id=scenario.scenario_id,
                                     from_step=scenario.from_step, to_step=scenario.step_id,
                                     path=list(scenario.path), missing_fields=list(scenario.missing_fields)),
        fields_extracted=masked_values(fields, {name: known.get(name) for name in result.data.accepted}),
        fields_rejected=dict(result.data.rejected),
        fallback_template_id=enforced.fallback_template_id,
        fallback_reason=enforced.fallback_reason,
        llm_calls=result.llm_calls,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        timings_ms=dict(result.timings_ms),
        created_at=facts.now_iso,
    )


def plain_record(facts: TurnFacts, outcome: Outcome, *, kind: Literal["silent", "refused"], reply: str = "",
                 fallback_reason: str = "") -> TurnRecord:
    """The record of a turn FOCAL did not run: a silent one during a handoff, or one refused by a quota."""
    message = mask_text(facts.message, facts.fields, facts.session.variables)
    return TurnRecord(**_ids(facts), message=message, reply=reply, outcome=outcome, created_at=facts.now_iso,
                      kind=kind, fallback_reason=fallback_reason)


def _ids(facts: TurnFacts) -> dict[str, Any]:
    session = facts.session
    return {"turn_id": facts.turn_id, "session_id": session.session_id, "tenant_id": facts.published.tenant_id,
            "agent_id": facts.published.agent_id, "interlocutor_id": session.interlocutor_id,
            "agent_version": facts.published.version, "turn_number": facts.turn_number,
            "channel": session.key.channel}
