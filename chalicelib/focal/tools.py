"""Run tools: call the tools bound to the selected rules and the current step, safely.

Per tool, in order: its inputs must all be known (else `skipped_missing_input`, no call); its
`guard` must hold (a missing value means it does not: `skipped_guard`); a tool with `confirm: true`
runs only when the session's pending confirmation names this tool with these same arguments and the
user said yes this turn (else `awaiting_confirmation`, and the plan asks). Then it is called with an
idempotency key stable across retried turns, a timeout, and retries for pure and idempotent tools
only: an irreversible call whose outcome is unknown is never repeated. A deadline bounds it all.
Declared `outputs` turn results into field values (source: tool).

The I/O is the injected ToolRunner; this module only decides and records.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_lambda_powertools import Logger

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.config import ToolsConfig
from chalicelib.domain.interlocutor import FieldChange, FieldScope, ValueSource
from chalicelib.domain.session import PendingConfirmation
from chalicelib.domain.tool import SideEffect, Tool, resolve_url
from chalicelib.focal.agent import LoadedAgent
from chalicelib.focal.fields import holds, is_known
from chalicelib.focal.types import (
    RuleDecision,
    ScenarioDecision,
    ToolFailed,
    ToolOutcome,
    ToolRequest,
    ToolRunner,
    Understanding,
)
from chalicelib.providers.tools_http import HttpToolClient, ToolCallFailed

logger = Logger(child=True)

BACKOFF_BASE_S = 0.05
MAX_BACKOFF_S = 0.5


class ToolRefused(ToolFailed):
    """A failure that asking again will not fix (a 4xx answer, a refused destination): no retry."""


@dataclass(frozen=True, slots=True)
class ToolsResult:
    outcomes: tuple[ToolOutcome, ...] = ()
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # tool id -> result (ok only)
    field_changes: tuple[FieldChange, ...] = ()  # persistent fields set by tool outputs
    session_values: Mapping[str, Any] = field(default_factory=dict)  # session fields set by outputs
    confirmation_request: PendingConfirmation | None = None  # the call the reply must ask to confirm
    irreversible_ran: bool = False  # an irreversible tool was called (whatever came back)

    @property
    def values(self) -> dict[str, Any]:
        """Every field value the tools set this turn, persistent and session-scoped."""
        return {**{change.name: change.value for change in self.field_changes}, **self.session_values}


def merged(first: ToolsResult, then: ToolsResult) -> ToolsResult:
    """Two rounds of one turn as one result: the later round's values win, the first request stays."""
    changes = {change.name: change for change in (*first.field_changes, *then.field_changes)}
    return ToolsResult(outcomes=first.outcomes + then.outcomes, results={**first.results, **then.results},
                       field_changes=tuple(changes.values()),
                       session_values={**first.session_values, **then.session_values},
                       confirmation_request=first.confirmation_request or then.confirmation_request,
                       irreversible_ran=first.irreversible_ran or then.irreversible_ran)


def tools_to_run(bundle: AgentBundle, decisions: Sequence[RuleDecision],
                 scenario: ScenarioDecision) -> list[Tool]:
    """Tools of the selected rules (in decision order), then the current step's; each once."""
    ids: list[str] = []
    for decision in decisions:
        rule = bundle.rule(decision.rule_id) if decision.selected else None
        ids.extend(rule.tools if rule is not None else ())
    if scenario.scenario_id and scenario.step_id and scenario.action != "exit":
        found = bundle.scenario(scenario.scenario_id)
        step = found.step(scenario.step_id) if found is not None else None
        ids.extend(step.tools if step is not None else ())
    return [tool for tool_id in dict.fromkeys(ids) if (tool := bundle.tool(tool_id)) is not None]


def idempotency_key(tenant_id: str, session_id: str, tool_id: str, arguments: Mapping[str, Any]) -> str:
    """A stable hash of (tenant, session, tool, arguments): a retried turn reuses the same key."""
    canonical = json.dumps([tenant_id, session_id, tool_id, dict(arguments)], sort_keys=True, default=str,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class ToolRound:
    """What one round of tools is decided on. A turn has a second round when tool outputs move the
    scenario to a step with tools of its own."""

    decisions: Sequence[RuleDecision]
    scenario: ScenarioDecision
    known: Mapping[str, Any]  # field values known so far: tool inputs and guards read them
    variables: Mapping[str, Any] = field(default_factory=dict)  # other names guards may use
    already_run: Collection[str] = ()  # tools an earlier round decided on: never called twice a turn


@dataclass(frozen=True, slots=True)
class ToolTurn:
    """Whose turn the tools run in: keys the idempotency of calls, and holds what a confirmation is
    checked against (the call the session is waiting on, and whether the user said yes)."""

    tenant_id: str
    session_id: str
    understanding: Understanding
    pending: PendingConfirmation | None = None

    def confirmed(self, tool: Tool, arguments: Mapping[str, Any]) -> bool:
        pending = self.pending
        return (pending is not None and self.understanding.confirmed and pending.tool_id == tool.id
                and pending.inputs == _plain(arguments))


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """How a round calls its tools: through `runner`, under `config`, none starting after `deadline_s`
    (a `clock()` reading, monotonic seconds). The clock and sleep are the tests' to replace."""

    runner: ToolRunner
    config: ToolsConfig
    deadline_s: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def call(self, tool: Tool, arguments: Mapping[str, Any], key: str) -> ToolOutcome:
        config, clock = self.config, self.clock
        url = resolve_url(tool.url, config.base_url) or tool.url  # still relative: the HTTP runner refuses it
        timeout_s = tool.timeout_s if tool.timeout_s is not None else config.timeout_s
        irreversible = tool.side_effect is SideEffect.IRREVERSIBLE
        retries = 0 if irreversible else (tool.retries if tool.retries is not None else config.max_retries)
        started = clock()
        status: Literal["timeout", "error"] = "timeout"
        attempts, error = 0, "deadline reached before the call"
        while attempts <= retries:
            remaining = self.deadline_s - clock()
            if remaining <= 0:
                break
            attempts += 1
            request = ToolRequest(tool=tool, arguments=dict(arguments), idempotency_key=key,
                                  timeout_s=min(timeout_s, remaining), retries=retries, url=url)
            try:
                result = self.runner(request)
            except TimeoutError:
                status, error = "timeout", f"no answer within {request.timeout_s:g} s"
            except ToolRefused as exc:
                status, error = "error", str(exc) or type(exc).__name__
                break
            except (ToolFailed, ConnectionError) as exc:
                status, error = "error", str(exc) or type(exc).__name__
            else:
                return ToolOutcome(tool.id, "ok", key, result=dict(result), attempts=attempts,
                                   latency_ms=(clock() - started) * 1000)
            if irreversible:
                # The call may have taken effect: repeating it could do it twice (DESIGN.md §3).
                status, error = "error", f"outcome unknown, not retried: {error}"
                break
            if attempts <= retries:
                self.sleep(max(0.0, min(MAX_BACKOFF_S, BACKOFF_BASE_S * 2 ** (attempts - 1),
                                        self.deadline_s - clock())))
        logger.warning("tool call failed", extra={"tool_id": tool.id, "status": status, "attempts": attempts})
        return ToolOutcome(tool.id, status, key, attempts=attempts,
                           latency_ms=(clock() - started) * 1000, error=error)


def run_tools(agent: LoadedAgent, round_: ToolRound, turn: ToolTurn, calls: ToolCalls) -> ToolsResult:
    """Run this round's tools in order; see the module docstring. Never raises for a tool's failure.

    Guards see `round_.variables` (message, turn_number), the known values, and `tools`: the results
    of earlier tools in this round.
    """
    bundle = agent.bundle
    outcomes: list[ToolOutcome] = []
    results: dict[str, Mapping[str, Any]] = {}
    request: PendingConfirmation | None = None
    irreversible_ran = False
    values: dict[str, Any] = dict(round_.known)
    for tool in tools_to_run(bundle, round_.decisions, round_.scenario):
        if tool.id in round_.already_run:
            continue
        arguments = {argument: values.get(name) for argument, name in tool.input_map.items()}
        key = idempotency_key(turn.tenant_id, turn.session_id, tool.id, arguments)
        if not all(is_known(value) for value in arguments.values()):
            outcomes.append(ToolOutcome(tool.id, "skipped_missing_input", key))
            continue
        scope = {**round_.variables, **values, "tools": dict(results)}
        if tool.guard is not None and not holds(agent, tool.guard, scope):
            outcomes.append(ToolOutcome(tool.id, "skipped_guard", key))
            continue
        if tool.confirm and not turn.confirmed(tool, arguments):
            outcomes.append(ToolOutcome(tool.id, "awaiting_confirmation", key))
            request = request or PendingConfirmation(tool_id=tool.id, inputs=_plain(arguments))
            continue
        outcome = calls.call(tool, arguments, key)
        outcomes.append(outcome)
        if tool.side_effect is SideEffect.IRREVERSIBLE and outcome.attempts > 0:
            irreversible_ran = True
        if outcome.status == "ok" and outcome.result is not None:
            results[tool.id] = outcome.result
            values.update(_output_values(bundle, tool, outcome.result))
    changes, session_values = _split_outputs(bundle, values, round_.known)
    logger.debug("tools ran", extra={"tool_statuses": {o.tool_id: o.status for o in outcomes}})
    return ToolsResult(outcomes=tuple(outcomes), results=results, field_changes=changes,
                       session_values=session_values, confirmation_request=request,
                       irreversible_ran=irreversible_ran)


def _plain(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments as JSON-ready data, as they will be stored on the session and compared next turn."""
    loaded: dict[str, Any] = json.loads(json.dumps(dict(arguments), default=str))
    return loaded


def _output_values(bundle: AgentBundle, tool: Tool, result: Mapping[str, Any]) -> dict[str, Any]:
    """Field values from a result through the tool's `outputs`, validated like any other value."""
    values: dict[str, Any] = {}
    for result_key, field_name in tool.outputs.items():
        definition = bundle.field(field_name)
        raw = result.get(result_key)
        if definition is None or not is_known(raw) or not definition.accepts_source(ValueSource.TOOL):
            continue
        try:
            values[field_name] = definition.coerce(raw)
        except ValueError as exc:
            logger.warning("tool output rejected", extra={"tool_id": tool.id, "field": field_name,
                                                          "reason": str(exc)})
    return values


def _split_outputs(bundle: AgentBundle, values: Mapping[str, Any],
                   known: Mapping[str, Any]) -> tuple[tuple[FieldChange, ...], dict[str, Any]]:
    changes: list[FieldChange] = []
    session_values: dict[str, Any] = {}
    for name, value in values.items():
        if name in known and known[name] == value:
            continue  # not set by a tool this turn, or set to what it already was
        definition = bundle.field(name)
        if definition is None:
            continue
        if definition.scope is FieldScope.SESSION:
            session_values[name] = value
        else:
            changes.append(FieldChange(name=name, value=value, source=ValueSource.TOOL,
                                       ttl_days=definition.ttl_days))
    return tuple(changes), session_values


def http_tool_runner(client: HttpToolClient) -> ToolRunner:
    """A ToolRunner calling tools over HTTP with the providers' client (POST JSON to the tool's url).

    Raises what the ToolRunner contract says: TimeoutError, ToolRefused for a 4xx answer or a refused
    destination (retrying cannot help), ToolFailed for anything else.
    """

    def run(request: ToolRequest) -> Mapping[str, Any]:
        url = request.url or request.tool.url
        if "://" not in url:
            raise ToolRefused(f"the relative url {url!r} needs tools.base_url in the config")
        try:
            return client.call(url, request.arguments, request.idempotency_key,
                               request.timeout_s)
        except ToolCallFailed as exc:
            refused = exc.reason == "blocked_destination" or (
                exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429))
            raise (ToolRefused if refused else ToolFailed)(str(exc)) from exc

    return run
