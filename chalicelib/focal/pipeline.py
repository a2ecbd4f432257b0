"""FOCAL phases 2-10 for a loaded turn context. Loading (1) and persisting (11) belong to runtime/.

Reads top to bottom; the logic lives in the phases. Pure but for the provider and tool calls
made through `FocalDeps`: no storage, no clock reads except the timings it reports.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.domain.budget import turn_budget
from chalicelib.domain.config import Config
from chalicelib.domain.interlocutor import FieldChange
from chalicelib.domain.session import ScenarioState
from chalicelib.domain.turn import Violation
from chalicelib.focal.enforcement.loop import ReplyHandling, enforce
from chalicelib.focal.enforcement.variables import expression_variables
from chalicelib.focal.formatting import format_reply
from chalicelib.focal.generate import generate, render_exclusive
from chalicelib.focal.interlocutor_update import update_interlocutor_data
from chalicelib.focal.plan import make_plan
from chalicelib.focal.privacy import as_placeholders, mask_text
from chalicelib.focal.retrieve import retrieve
from chalicelib.focal.scenario import TransitionScope, orchestrate_scenario
from chalicelib.focal.select_rules import TurnPosition, select_rules
from chalicelib.focal.tools import ToolCalls, ToolRound, ToolsResult, ToolTurn, merged, run_tools
from chalicelib.focal.types import (
    DataUpdate,
    Draft,
    Enforced,
    FocalDeps,
    Plan,
    Retrieved,
    RuleDecision,
    ScenarioDecision,
    TurnContext,
    Understanding,
)
from chalicelib.focal.understand import understand


@dataclass(frozen=True, slots=True)
class FocalResult:
    """Everything the turn decided: what runtime/ commits and what the turn record explains."""

    retrieved: Retrieved
    understanding: Understanding
    data: DataUpdate
    decisions: tuple[RuleDecision, ...]
    scenario: ScenarioDecision
    tools: ToolsResult
    plan: Plan
    enforced: Enforced
    config: Config  # the config the reply was made under (the final step's)
    field_changes: tuple[FieldChange, ...]  # persistent values to store: the user's and the tools'
    session_values: Mapping[str, Any]
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    timings_ms: Mapping[str, float]

    @property
    def selected_rules(self) -> tuple[str, ...]:
        return tuple(decision.rule_id for decision in self.decisions if decision.selected)


def run_focal(ctx: TurnContext, deps: FocalDeps, *, tool_deadline_s: float) -> FocalResult:
    """Run phases 2-10. Never raises for an LLM or tool failure: those end in the fallback.

    The turn's budget for tenant logic (expressions, tenant regexes) is open for all of it.
    """
    with turn_budget():
        return _phases(ctx, deps, tool_deadline_s=tool_deadline_s)


def _phases(ctx: TurnContext, deps: FocalDeps, *, tool_deadline_s: float) -> FocalResult:
    clock = _Clock()
    agent = ctx.agent
    bundle = agent.bundle
    session = ctx.session
    state = session.scenario
    message = ctx.turn.message

    index = agent.index(deps.embedder)
    query_vector = deps.embedder.embed([message])
    found = retrieve(index, message, query_vector, state=state, config=ctx.config.retrieval)
    clock.lap("retrieve")

    understood = understand(ctx, found, deps.llm)
    clock.lap("understand")

    data = update_interlocutor_data(understood.values, bundle.fields, ctx.interlocutor, session.variables)
    decisions = select_rules(found.rules, understood, bundle, session.rule_usage,
                             TurnPosition(ctx.turn.turn_number, state))
    base_variables = {"message": message, "turn_number": ctx.turn.turn_number, "tools": {}}
    scenario = orchestrate_scenario(agent, state, understood, found.scenarios,
                                    TransitionScope(data.known, base_variables, ctx.turn.turn_number))
    clock.lap("select")

    tools, scenario, known = _tools_and_transitions(
        ctx, deps, _Turn(found, understood, data, decisions, scenario, base_variables), deadline_s=tool_deadline_s)
    config = _config_for(ctx, deps, scenario)
    clock.lap("tools")

    plan = make_plan(agent, decisions, scenario, tools, known)
    turn_ctx = replace(ctx, config=config)
    first = _first_draft(plan, turn_ctx, deps)
    clock.lap("generate")

    def variables_for(reply: str) -> dict[str, Any]:
        return expression_variables(reply=reply, message=message, turn_number=ctx.turn.turn_number,
                                    known=known, tool_results=tools.results)

    def regenerate(previous: str, violations: tuple[Violation, ...]) -> Draft:
        # The previous reply has placeholders filled: the model gets them back as placeholders.
        shown = as_placeholders(mask_text(previous, bundle.fields, known))
        return generate(plan, turn_ctx, deps.llm, feedback=(shown, violations))

    handling = ReplyHandling(variables_for=variables_for, regenerate=regenerate,
                             format_reply=lambda text: format_reply(text, config.response),
                             expressions=agent.constraints, mask=lambda text: mask_text(text, bundle.fields, known))
    enforced = enforce(first, plan, handling, llm=deps.llm, config=config)
    clock.lap("enforce")

    llm_calls = understood.llm_calls + first.llm_calls + enforced.llm_calls
    return FocalResult(
        retrieved=found, understanding=understood, data=data, decisions=tuple(decisions), scenario=scenario,
        tools=tools, plan=plan, enforced=enforced, config=config,
        field_changes=_merge_changes(data.changes, tools.field_changes),
        session_values={**data.session_values, **tools.session_values},
        llm_calls=llm_calls,
        prompt_tokens=understood.prompt_tokens + first.prompt_tokens + enforced.prompt_tokens,
        completion_tokens=understood.completion_tokens + first.completion_tokens + enforced.completion_tokens,
        timings_ms=clock.laps,
    )


@dataclass(frozen=True, slots=True)
class _Turn:
    """What the phases before tools decided (the inputs of the tool rounds)."""

    found: Retrieved
    understood: Understanding
    data: DataUpdate
    decisions: list[RuleDecision]
    scenario: ScenarioDecision
    variables: Mapping[str, Any]  # the names expressions see besides fields: message, turn_number, tools


def _tools_and_transitions(ctx: TurnContext, deps: FocalDeps, turn: _Turn, *,
                           deadline_s: float) -> tuple[ToolsResult, ScenarioDecision, Mapping[str, Any]]:
    """Run the tools, then follow the transitions their outputs open, running each new step's tools.

    A step reached through a tool's output gets its own tools run in the same turn: that is how the
    turn that lands on a confirmation step registers the pending confirmation (the next "yes" runs
    the call). Bounded by the scenario's size; a tool is decided on at most once a turn.
    """
    agent = ctx.agent
    session = ctx.session
    scenario, base_variables = turn.scenario, turn.variables
    who = ToolTurn(tenant_id=ctx.tenant_id, session_id=session.session_id, understanding=turn.understood,
                   pending=session.pending_confirmation)

    def calls_for(step: ScenarioDecision) -> ToolCalls:
        return ToolCalls(runner=deps.tools, config=_config_for(ctx, deps, step).tools, deadline_s=deadline_s)

    tools = run_tools(agent, ToolRound(turn.decisions, scenario, turn.data.known, base_variables), who,
                      calls_for(scenario))
    known: Mapping[str, Any] = turn.data.known
    active = agent.bundle.scenario(scenario.scenario_id) if scenario.scenario_id else None
    latest = tools
    for _ in range(len(active.steps) if active is not None else 1):
        if not (latest.field_changes or latest.session_values):
            break
        # Tool outputs set fields: transitions are evaluated again with them (several hops may hold).
        known = {**turn.data.known, **tools.values}
        before = scenario.step_id
        variables = {**base_variables, "tools": dict(tools.results)}
        again = orchestrate_scenario(agent, _where_it_ended(scenario, session.scenario), turn.understood,
                                     turn.found.scenarios, TransitionScope(known, variables, ctx.turn.turn_number))
        scenario = _chain(scenario, again)
        if scenario.step_id == before or scenario.action in ("exit", "none"):
            break
        decided = [o.tool_id for o in tools.outcomes if o.status not in ("skipped_missing_input", "skipped_guard")]
        round_ = ToolRound((), scenario, known, variables, decided)
        latest = run_tools(agent, round_, who, calls_for(scenario))
        tools = merged(tools, latest)
    return tools, scenario, known


def _first_draft(plan: Plan, ctx: TurnContext, deps: FocalDeps) -> Draft:
    if plan.exclusive is not None:  # the template is the reply: no generation call
        return Draft(reply=render_exclusive(plan, ctx.config.response), llm_calls=0)
    return generate(plan, ctx, deps.llm)


def _config_for(ctx: TurnContext, deps: FocalDeps, scenario: ScenarioDecision) -> Config:
    if deps.resolve_config is None:
        return ctx.config
    return deps.resolve_config(scenario.scenario_id, scenario.step_id)


def _where_it_ended(scenario: ScenarioDecision, state: ScenarioState | None) -> ScenarioState | None:
    """The scenario state to continue from once tools have run: where the first pass ended."""
    if scenario.scenario_id is None or scenario.step_id is None or scenario.action in ("exit", "complete"):
        return state
    return ScenarioState(scenario_id=scenario.scenario_id, step_id=scenario.step_id)


def _chain(first: ScenarioDecision, second: ScenarioDecision) -> ScenarioDecision:
    """One decision for the whole turn: the first pass's origin, the second pass's destination."""
    if first.action in ("exit", "complete"):
        return first
    if first.action == "none":
        return second
    if second.step_id == first.step_id:
        return replace(first, missing_fields=second.missing_fields, handoff=first.handoff or second.handoff)
    path = first.path + tuple(step for step in second.path if step not in first.path)
    action = "start" if first.action == "start" else second.action
    return replace(second, action=action, from_step=first.from_step, path=path,
                   handoff=first.handoff or second.handoff)


def _merge_changes(*groups: tuple[FieldChange, ...]) -> tuple[FieldChange, ...]:
    """One change per field: a tool's output wins over what the user said in the same turn."""
    merged: dict[str, FieldChange] = {}
    for group in groups:
        for change in group:
            merged[change.name] = change
    return tuple(merged.values())


class _Clock:
    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self._last) * 1000, 3)
        self._last = now
