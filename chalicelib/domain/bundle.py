"""An agent bundle: everything that makes one agent, validated as a whole (API.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import Field, ValidationError

from chalicelib.domain.base import Model
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.config import Layer, validate_layer
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.expressions import REPLY_NAMES, ExpressionError, compile_expression
from chalicelib.domain.interlocutor import FieldDefinition
from chalicelib.domain.rule import Rule, Scope
from chalicelib.domain.scenario import Scenario, Step
from chalicelib.domain.template import Template
from chalicelib.domain.tool import Tool


class AgentInfo(Model):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)


class ChannelLayer(Model):
    config: dict[str, Any] = Field(default_factory=dict)


class AgentBundle(Model):
    agent: AgentInfo
    fields: list[FieldDefinition] = Field(default_factory=list)
    tools: list[Tool] = Field(default_factory=list)
    templates: list[Template] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    scenarios: list[Scenario] = Field(default_factory=list)
    channels: dict[ChannelName, ChannelLayer] = Field(default_factory=dict)

    # Lookups by id run many times a turn: each map is built once per (frozen) bundle.
    @cached_property
    def _rules_by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in reversed(self.rules)}  # reversed: the first of duplicates wins

    @cached_property
    def _scenarios_by_id(self) -> dict[str, Scenario]:
        return {scenario.id: scenario for scenario in reversed(self.scenarios)}

    @cached_property
    def _templates_by_id(self) -> dict[str, Template]:
        return {template.id: template for template in reversed(self.templates)}

    @cached_property
    def _tools_by_id(self) -> dict[str, Tool]:
        return {tool.id: tool for tool in reversed(self.tools)}

    @cached_property
    def _fields_by_name(self) -> dict[str, FieldDefinition]:
        return {field.name: field for field in reversed(self.fields)}

    @cached_property
    def always_enforced(self) -> tuple[Rule, ...]:
        """The global hard constraints: enforced on every turn, retrieved or not."""
        return tuple(rule for rule in self.rules if rule.is_always_enforced)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> AgentBundle:
        """A copy whose lookups see the copy's items (the cached maps are not carried over)."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _LOOKUPS:
            copy.__dict__.pop(name, None)
        return copy

    def rule(self, rule_id: str) -> Rule | None:
        return self._rules_by_id.get(rule_id)

    def scenario(self, scenario_id: str) -> Scenario | None:
        return self._scenarios_by_id.get(scenario_id)

    def template(self, template_id: str) -> Template | None:
        return self._templates_by_id.get(template_id)

    def tool(self, tool_id: str) -> Tool | None:
        return self._tools_by_id.get(tool_id)

    def field(self, name: str) -> FieldDefinition | None:
        return self._fields_by_name.get(name)

    def to_document(self) -> dict[str, Any]:
        """The bundle as JSON-ready data, without defaults a user never wrote."""
        return self.model_dump(mode="json", exclude_defaults=True)


_LOOKUPS = ("_rules_by_id", "_scenarios_by_id", "_templates_by_id", "_tools_by_id", "_fields_by_name",
            "always_enforced")


def parse_bundle(document: object) -> AgentBundle:
    """Validate a whole bundle. Raises InvalidInput listing every problem with its path."""
    if not isinstance(document, dict):
        raise InvalidInput.at("", "an agent bundle must be an object with at least `agent`")
    try:
        bundle = AgentBundle.model_validate(document)
    except ValidationError as exc:
        shape = [(_path(error["loc"]), error["msg"]) for error in exc.errors(include_input=False, include_url=False)]
        raise InvalidInput.many(shape + list(_raw_layer_problems(document))) from None
    problems = list(_reference_problems(bundle))
    if problems:
        raise InvalidInput.many(problems)
    return bundle


def _raw_layer_problems(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The config layers' problems of a bundle whose shape is wrong elsewhere: all reported at once."""
    agent = document.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("config"), dict):
        yield from validate_layer(agent["config"], Layer.AGENT, "agent.config")
    channels = document.get("channels")
    for name, channel in (channels.items() if isinstance(channels, dict) else []):
        if isinstance(channel, dict) and isinstance(channel.get("config"), dict):
            yield from validate_layer(channel["config"], Layer.CHANNEL, f"channels.{name}.config")


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _duplicates(kind: str, ids: list[str]) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            yield f"{kind}[{index}].id", f"duplicate id {item_id!r}"
        seen.add(item_id)


def _reference_problems(bundle: AgentBundle) -> Iterator[tuple[str, str]]:
    templates = {template.id: template for template in bundle.templates}
    tools = {tool.id for tool in bundle.tools}
    rules = {rule.id for rule in bundle.rules}
    fields = {field.name for field in bundle.fields}
    scenarios = {scenario.id: scenario for scenario in bundle.scenarios}
    yield from _duplicates("rules", [rule.id for rule in bundle.rules])
    yield from _duplicates("templates", list(templates) if len(templates) == len(bundle.templates)
                           else [template.id for template in bundle.templates])
    yield from _duplicates("tools", [tool.id for tool in bundle.tools])
    yield from _duplicates("fields", [field.name for field in bundle.fields])
    yield from _duplicates("scenarios", [scenario.id for scenario in bundle.scenarios])
    clash = fields & REPLY_NAMES
    for index, field in enumerate(bundle.fields):
        if field.name in clash:
            yield f"fields[{index}].name", f"{field.name!r} is a reserved name in expressions"

    expression_names = fields | REPLY_NAMES

    def check_expression(path: str, source: str | None) -> Iterator[tuple[str, str]]:
        if source is not None:
            try:
                compile_expression(source, expression_names)
            except ExpressionError as exc:
                yield path, str(exc)

    yield from _layer_problems("agent.config", bundle.agent.config, Layer.AGENT)
    for channel_name, channel in bundle.channels.items():
        yield from _layer_problems(f"channels.{channel_name.value}.config", channel.config, Layer.CHANNEL)

    for index, rule in enumerate(bundle.rules):
        at = f"rules[{index}]"
        yield from _scope_problems(at, rule.scope, rule.scenario, rule.step, scenarios)
        for position, template_id in enumerate(rule.templates):
            if template_id not in templates:
                yield f"{at}.templates[{position}]", f"unknown template {template_id!r}"
        for position, tool_id in enumerate(rule.tools):
            if tool_id not in tools:
                yield f"{at}.tools[{position}]", f"unknown tool {tool_id!r}"
        for relation in ("depends_on", "excludes", "entails"):
            for position, other in enumerate(getattr(rule, relation)):
                if other not in rules:
                    yield f"{at}.{relation}[{position}]", f"unknown rule {other!r}"
                elif other == rule.id:
                    yield f"{at}.{relation}[{position}]", "a rule cannot refer to itself"
        if rule.expression is not None and not rule.hard_constraint:
            yield f"{at}.expression", "an expression is only used on a hard constraint"
        yield from check_expression(f"{at}.expression", rule.expression)

    for index, template in enumerate(bundle.templates):
        at = f"templates[{index}]"
        yield from _scope_problems(at, template.scope, template.scenario, template.step, scenarios)
        for name in template.variables_used:
            head = name.split(".", 1)[0]
            # `topics` is filled by the engine: what the agent helps with (its scenario and rule names).
            if head not in ("tools", "topics") and head not in fields:
                yield f"{at}.text", f"placeholder {{{{ {name} }}}} names no declared field"

    for index, tool in enumerate(bundle.tools):
        at = f"tools[{index}]"
        for argument, field_name in tool.input_map.items():
            if field_name not in fields:
                yield f"{at}.inputs.{argument}", f"unknown field {field_name!r}"
        for key, field_name in tool.outputs.items():
            if field_name not in fields:
                yield f"{at}.outputs.{key}", f"unknown field {field_name!r}"
        yield from check_expression(f"{at}.guard", tool.guard)

    declared = _Declared(templates=templates, tools=tools, fields=fields, check_expression=check_expression)
    for index, scenario in enumerate(bundle.scenarios):
        yield from _scenario_problems(f"scenarios[{index}]", scenario, declared)


def _layer_problems(path: str, layer: dict[str, Any], at: Layer) -> Iterator[tuple[str, str]]:
    yield from validate_layer(layer, at, path)


def _scope_problems(at: str, scope: Scope, scenario_id: str | None, step_id: str | None,
                    scenarios: dict[str, Scenario]) -> Iterator[tuple[str, str]]:
    if scope is Scope.GLOBAL:
        return
    scenario = scenarios.get(scenario_id or "")
    if scenario is None:
        yield f"{at}.scenario", f"unknown scenario {scenario_id!r}"
    elif scope is Scope.STEP and scenario.step(step_id or "") is None:
        yield f"{at}.step", f"unknown step {step_id!r} in scenario {scenario_id!r}"


@dataclass(frozen=True, slots=True)
class _Declared:
    """What a bundle declares that its scenarios may refer to, and how their expressions are checked."""

    templates: Mapping[str, Template]
    tools: set[str]
    fields: set[str]
    check_expression: Callable[[str, str | None], Iterator[tuple[str, str]]]


def _scenario_problems(at: str, scenario: Scenario, declared: _Declared) -> Iterator[tuple[str, str]]:
    step_ids = [step.id for step in scenario.steps]
    yield from _duplicates(f"{at}.steps", step_ids)
    if scenario.entry_step not in step_ids:
        yield f"{at}.entry_step", f"unknown step {scenario.entry_step!r}"
    yield from _layer_problems(f"{at}.config", scenario.config, Layer.SCENARIO)
    for index, step in enumerate(scenario.steps):
        yield from _step_problems(f"{at}.steps[{index}]", step, set(step_ids), declared)


def _step_problems(at: str, step: Step, step_ids: set[str], declared: _Declared) -> Iterator[tuple[str, str]]:
    yield from _layer_problems(f"{at}.config", step.config, Layer.STEP)
    for name in step.field_names():
        if name not in declared.fields:
            yield f"{at}.required_fields", f"unknown field {name!r}"
    for position, template_id in enumerate(step.templates):
        if template_id not in declared.templates:
            yield f"{at}.templates[{position}]", f"unknown template {template_id!r}"
    for position, tool_id in enumerate(step.tools):
        if tool_id not in declared.tools:
            yield f"{at}.tools[{position}]", f"unknown tool {tool_id!r}"
    for position, transition in enumerate(step.transitions):
        where = f"{at}.transitions[{position}]"
        if transition.to not in step_ids:
            yield f"{where}.to", f"unknown step {transition.to!r}"
        if transition.condition is None and transition.expression is None:
            yield where, "a transition needs a `condition` or an `expression`"
        yield from declared.check_expression(f"{where}.expression", transition.expression)


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What a publish writes as an agent's next version: the bundle, the embeddings computed for it
    (or kept, on a rollback) and the document as its publisher wrote it."""

    bundle: AgentBundle
    vectors: dict[str, list[float]]
    embedding_model: str
    source: str | None = None  # the YAML document (comments included), when it was YAML


@dataclass(frozen=True, slots=True)
class PublishedBundle:
    """One published version of an agent, with the rule embeddings computed at publish time."""

    tenant_id: str
    agent_id: str
    version: int
    bundle: AgentBundle
    published_at: str
    embedding_model: str = ""
    vectors: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # "rule:<id>" / "scenario:<id>"
    source: str | None = None  # the YAML document as published (comments included), when it was YAML
