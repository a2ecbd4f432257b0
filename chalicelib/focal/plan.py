"""Plan the reply: templates, instructions, what to ask and confirm, constraints and fallbacks.

Pure: no I/O, no clock, no LLM. The plan's `draft` is the deterministic composition of the plan
(focal/compose.py): what the offline provider answers, made only of the tenant's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.interlocutor import ValueSource
from chalicelib.domain.rule import Rule
from chalicelib.domain.scenario import Step
from chalicelib.domain.template import Template, TemplateMode
from chalicelib.focal.agent import LoadedAgent
from chalicelib.focal.compose import TOPICS, compose_draft
from chalicelib.focal.fields import is_known
from chalicelib.focal.tools import ToolsResult
from chalicelib.focal.types import Plan, RuleDecision, ScenarioDecision


def make_plan(agent: LoadedAgent, decisions: Sequence[RuleDecision], scenario: ScenarioDecision,
              tools: ToolsResult, known: Mapping[str, Any]) -> Plan:
    """Build the plan of this turn's reply. Never raises.

    - exclusive: the first EXCLUSIVE template of a selected rule (by priority), then of the current
      step, whose placeholders all have values; none while a confirmation must be asked;
    - hard rules: the selected hard constraints, then the bundle's always-enforced ones;
    - fallbacks, most specific first: the current step's, the scenario's, those attached to
      selected rules, then global ones attached to nothing.

    Reads the version's derived lookups (`agent`): nothing here scans every rule or template.
    """
    bundle = agent.bundle
    rules = _selected_rules(bundle, decisions)
    step = _current_step(bundle, scenario)
    variables: dict[str, Any] = {name: value for name, value in known.items() if is_known(value)}
    variables["tools"] = {tool_id: dict(result) for tool_id, result in tools.results.items()}
    helps_with = agent.topics
    if helps_with:
        variables.setdefault(TOPICS, helps_with)  # {{ topics }}: what the agent can help with
    confirm_tool = tools.confirmation_request.tool_id if tools.confirmation_request else None

    rule_templates = [template for rule in rules for template in _templates(bundle, rule.templates)]
    step_templates = _step_templates(agent, scenario, step)
    candidates = _unique([*rule_templates, *step_templates])
    exclusive = None if confirm_tool else next(
        (t for t in candidates if t.mode is TemplateMode.EXCLUSIVE and t.can_render(variables)), None)
    suggestions = tuple(t for t in candidates if t.mode is TemplateMode.SUGGEST)
    ask_fields = scenario.missing_fields if scenario.action not in ("complete", "exit", "none") else ()

    hard = _unique_rules([*(rule for rule in rules if rule.hard_constraint), *bundle.always_enforced])
    fallbacks = _fallbacks(agent, scenario, step_templates, rule_templates)
    plan = Plan(
        exclusive=exclusive,
        suggestions=suggestions,
        instructions=tuple(rule.action for rule in rules),
        step_instruction=step.instruction if step is not None else "",
        ask_fields=tuple(ask_fields),
        confirm_tool=confirm_tool,
        hard_rules=tuple(hard),
        fallbacks=tuple(fallbacks),
        variables=variables,
        handoff=scenario.handoff or any(rule.handoff for rule in rules),
        draft="",
        placeholders=allowed_placeholders(bundle, variables, [*candidates, *fallbacks]),
    )
    return replace(plan, draft=compose_draft(plan, agent))


def allowed_placeholders(bundle: AgentBundle, variables: Mapping[str, Any],
                         templates: Iterable[Template]) -> frozenset[str]:
    """The placeholders a generated reply may have filled this turn: those the plan's templates
    name, every field that is not PII, the PII fields the user may state (their own data), and tool
    results. A PII field only a tool or the API sets (an internal note) is filled only where the
    tenant's template asks for it, never because a model (or a user it echoes) wrote its name."""
    names = {name for template in templates for name in template.variables_used}
    for name in variables:
        definition = bundle.field(name)
        if name != "tools" and (definition is None or not definition.pii
                                or definition.accepts_source(ValueSource.USER)):
            names.add(name)
    tools = variables.get("tools")
    if isinstance(tools, Mapping):
        names.update(f"tools.{tool_id}.{key}" for tool_id, result in tools.items()
                     if isinstance(result, Mapping) for key in result)
    return frozenset(names)


def _selected_rules(bundle: AgentBundle, decisions: Sequence[RuleDecision]) -> list[Rule]:
    rules = [rule for decision in decisions if decision.selected and (rule := bundle.rule(decision.rule_id))]
    return sorted(_unique_rules(rules), key=lambda rule: -rule.priority)  # stable: ties keep decision order


def _current_step(bundle: AgentBundle, scenario: ScenarioDecision) -> Step | None:
    if scenario.action in ("none", "exit") or not scenario.scenario_id or not scenario.step_id:
        return None
    found = bundle.scenario(scenario.scenario_id)
    return found.step(scenario.step_id) if found is not None else None


def _templates(bundle: AgentBundle, ids: Iterable[str]) -> list[Template]:
    return [template for template_id in ids if (template := bundle.template(template_id)) is not None]


def _step_templates(agent: LoadedAgent, scenario: ScenarioDecision, step: Step | None) -> list[Template]:
    """Templates attached to the current step, then those scoped to it."""
    if step is None or scenario.scenario_id is None:
        return []
    scoped = agent.step_templates.get((scenario.scenario_id, step.id), ())
    return _unique([*_templates(agent.bundle, step.templates), *scoped])


def _fallbacks(agent: LoadedAgent, scenario: ScenarioDecision, step_templates: list[Template],
               rule_templates: list[Template]) -> list[Template]:
    in_scenario = scenario.action not in ("none", "exit") and scenario.scenario_id is not None
    scenario_scoped = agent.scenario_templates.get(scenario.scenario_id or "", ()) if in_scenario else ()
    ordered = [*step_templates, *scenario_scoped, *rule_templates, *agent.unattached_globals]
    return _unique([t for t in ordered if t.mode is TemplateMode.FALLBACK])


def _unique(templates: Iterable[Template]) -> list[Template]:
    seen: dict[str, Template] = {}
    for template in templates:
        seen.setdefault(template.id, template)
    return list(seen.values())


def _unique_rules(rules: Iterable[Rule]) -> list[Rule]:
    seen: dict[str, Rule] = {}
    for rule in rules:
        seen.setdefault(rule.id, rule)
    return list(seen.values())

