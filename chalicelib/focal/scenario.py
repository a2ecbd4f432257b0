"""Orchestrate the scenario: start, continue, follow transitions, exit or complete, for one turn.

Pure: no I/O, no clock, no LLM (condition-only transitions were judged by the understanding call).
Called by focal/pipeline.py, once after rule selection and again after tools set fields.

Semantics, in order:
- an active scenario and the signal "exit" -> action "exit" (the session leaves the scenario);
  an active scenario or step that the bundle no longer has -> "exit" too;
- no active scenario -> start the scenario the understanding names, or, when the signal is
  "start", the best retrieved scenario scoring at least START_THRESHOLD, at its entry step;
- an active scenario and the signal "start" naming another scenario -> a switch: the other one
  starts at its entry step (the fields already collected stay known);
- then, from the current step, follow transitions while the step's required fields are all known
  and a transition holds (the first holding one in declared order), never revisiting a step within
  the turn and stopping at a terminal or handoff step. A user who gives everything at once thus
  skips ahead several steps in one turn.
- standing on a terminal step -> "complete" (the session leaves the scenario after this reply);
  a step with `handoff: true` reached this turn -> handoff.
`path` lists every step the session stood on this turn, in order, starting with the step it was
on (or the entry step when starting); `missing_fields` are the final step's unknown required fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.scenario import Scenario, Step, Transition
from chalicelib.domain.session import ScenarioState
from chalicelib.focal.agent import LoadedAgent
from chalicelib.focal.fields import holds, missing_required
from chalicelib.focal.types import ScenarioDecision, ScoredItem, Understanding

NONE = ScenarioDecision(action="none")
START_THRESHOLD = 0.35  # the least score at which a retrieved scenario starts on a "start" signal
Action = Literal["start", "continue", "transition", "complete"]


def condition_id(scenario_id: str, step_id: str, index: int) -> str:
    """The id under which the understanding call reports a condition-only transition as true."""
    return f"{scenario_id}/{step_id}/{index}"


@dataclass(frozen=True, slots=True)
class TransitionScope:
    """What transition expressions read this turn: the field values known, and the other names
    (message, tools; `turn_number` unless the variables carry it)."""

    known: Mapping[str, Any]
    variables: Mapping[str, Any]
    turn_number: int

    def names(self) -> dict[str, Any]:
        scope: dict[str, Any] = {**self.known, **self.variables}
        scope.setdefault("turn_number", self.turn_number)
        scope.setdefault("tools", {})
        return scope


def orchestrate_scenario(agent: LoadedAgent, state: ScenarioState | None, understanding: Understanding,
                         scenarios: Sequence[ScoredItem], scope: TransitionScope) -> ScenarioDecision:
    """Decide where the session stands in a scenario after this turn (see the module docstring).

    Never raises.
    """
    switching = (state is not None and understanding.scenario_signal == "start"
                 and understanding.scenario_id not in (None, state.scenario_id))
    walk = _Walk(agent, understanding, scope)
    if state is not None and not switching:
        scenario = agent.bundle.scenario(state.scenario_id)
        step = scenario.step(state.step_id) if scenario is not None else None
        if scenario is None or step is None or understanding.scenario_signal == "exit":
            return ScenarioDecision(action="exit", scenario_id=state.scenario_id, from_step=state.step_id)
        return walk.advance(scenario, step, starting=False)

    scenario = _scenario_to_start(agent.bundle, understanding, scenarios)
    if scenario is None:
        return NONE
    entry = scenario.step(scenario.entry_step)
    if entry is None:  # publish rejects this; a bundle that slipped through never starts
        return NONE
    return walk.advance(scenario, entry, starting=True)


def _scenario_to_start(bundle: AgentBundle, understanding: Understanding,
                       scenarios: Sequence[ScoredItem]) -> Scenario | None:
    if understanding.scenario_signal == "exit":
        return None
    if understanding.scenario_id is not None:
        named = bundle.scenario(understanding.scenario_id)
        if named is not None:
            return named
    if understanding.scenario_signal != "start":
        return None
    eligible = [item for item in scenarios if item.kind == "scenario" and item.score >= START_THRESHOLD]
    for item in sorted(eligible, key=lambda item: -item.score):
        found = bundle.scenario(item.item_id)
        if found is not None:
            return found
    return None


class _Walk:
    """Follows transitions for one turn: what decides them (the agent's expressions over the scope,
    the conditions the understanding call judged true) does not change while walking."""

    def __init__(self, agent: LoadedAgent, understanding: Understanding, scope: TransitionScope) -> None:
        self._agent, self._understanding = agent, understanding
        self._known, self._names = scope.known, scope.names()

    def advance(self, scenario: Scenario, step: Step, *, starting: bool) -> ScenarioDecision:
        path = [step.id]
        handoff = starting and step.handoff
        missing = missing_required(step, self._known)
        while not missing and not step.terminal and not step.handoff:
            target = self._first_holding(scenario, step)
            if target is None or target.id in path:  # never revisit a step within one turn
                break
            step = target
            path.append(step.id)
            handoff = handoff or step.handoff
            missing = missing_required(step, self._known)

        action: Action
        if step.terminal:
            action = "complete"
        elif starting:
            action = "start"
        else:
            action = "transition" if len(path) > 1 else "continue"
        return ScenarioDecision(action=action, scenario_id=scenario.id, step_id=step.id,
                                from_step=None if starting else path[0], path=tuple(path),
                                missing_fields=missing, handoff=handoff)

    def _first_holding(self, scenario: Scenario, step: Step) -> Step | None:
        for index, transition in enumerate(step.transitions):
            if self._holds(condition_id(scenario.id, step.id, index), transition):
                return scenario.step(transition.to)
        return None

    def _holds(self, key: str, transition: Transition) -> bool:
        if transition.expression is not None:
            return holds(self._agent, transition.expression, self._names)
        return key in self._understanding.conditions_true
