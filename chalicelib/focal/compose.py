"""Compose the reply without a model: the offline tier's answer, made only of the tenant's text.

The offline provider sends this draft as the reply (local stack, `ruche test`, and tenants who
choose `llm.provider: offline` for a channel where no model is wanted). It is built only from what
the tenant wrote, with its placeholders left as written (generation fills them exactly once, with
only the names the plan allows, as it does a model's draft): templates (EXCLUSIVE as is; SUGGEST statements, then one
question), each missing field's `ask`, and, when nothing applies, the agent's global FALLBACK
template (which may list what the agent helps with through `{{ topics }}`). Rule actions and step
instructions are instructions to a model: they are never shown to the customer.

The engine adds words of its own only where the tenant wrote none: a question for a missing field
without `ask` ("Could you tell me the order number?"), a confirmation question when no template
asks one, and a one-line apology when the agent has no global fallback.

Pure: no I/O, no clock, no LLM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.rule import Scope
from chalicelib.domain.template import Template, TemplateMode
from chalicelib.focal.types import Plan

if TYPE_CHECKING:
    from chalicelib.focal.agent import LoadedAgent

NOTHING_APPLIES = "Sorry, I can't help with that here."
TOPICS = "topics"  # the reserved placeholder: what the agent can help with, in the tenant's words
_WH_WORDS = ("why", "what", "which", "when", "where", "who", "how", "whether")
_ARTICLES = ("your ", "the ", "a ", "an ", "my ")


def compose_draft(plan: Plan, agent: LoadedAgent) -> str:
    """The plan as a reply made of the tenant's templates, field questions and values. Never raises."""
    bundle = agent.bundle
    variables = plan.variables
    if plan.exclusive is not None:
        return plan.exclusive.text
    renderable = [template for template in plan.suggestions if template.can_render(variables)]
    statements = [template.text for template in renderable if not _asks(template)]
    questions = [template.text for template in renderable if _asks(template)]
    parts = list(statements)
    if plan.ask_fields:
        parts += _questions_for_fields(bundle, plan.ask_fields, questions, variables)
    elif plan.confirm_tool:
        parts += questions[:1] or [_confirmation_question(bundle, plan.confirm_tool)]
    else:
        parts += questions[:1]
    text = " ".join(" ".join(part.split()) for part in parts if part.strip())
    return text or nothing_applies(plan, agent.attached)


def nothing_applies(plan: Plan, attached: frozenset[str]) -> str:
    """The agent's own words for "I can't help with that": its first global FALLBACK template
    attached to no rule or step (`attached`: LoadedAgent.attached)."""
    for template in plan.fallbacks:
        if template.scope is Scope.GLOBAL and template.id not in attached and template.can_render(plan.variables):
            return " ".join(template.text.split())
    return NOTHING_APPLIES


def topics_of(bundle: AgentBundle) -> str:
    """What the agent can help with, in the tenant's words: its scenarios' names, then the names of
    rules that answer with a template (guardrails and handoffs are not topics). Scans the bundle:
    computed once per version, at load (focal/agent.py)."""
    names = [scenario.name for scenario in bundle.scenarios if scenario.name]
    answering = {template.id for template in bundle.templates if template.mode is not TemplateMode.FALLBACK}
    names += [rule.name for rule in bundle.rules
              if rule.name and rule.enabled and not rule.hard_constraint and not rule.handoff
              and rule.scope is Scope.GLOBAL and answering.intersection(rule.templates)]
    return ", ".join(dict.fromkeys(_lower_first(name) for name in names))


def attached_templates(bundle: AgentBundle) -> frozenset[str]:
    """Ids of the templates some rule or step names. Scans the bundle: computed once, at load."""
    ids = {template_id for rule in bundle.rules for template_id in rule.templates}
    ids.update(template_id for scenario in bundle.scenarios for step in scenario.steps
               for template_id in step.templates)
    return frozenset(ids)


def _questions_for_fields(bundle: AgentBundle, names: Sequence[str], questions: Sequence[str],
                          variables: Mapping[str, Any]) -> list[str]:
    """Each missing field's own `ask`; when some have none, the step's question template, if any."""
    definitions = [bundle.field(name) for name in names]
    asks = [definition.ask for definition in definitions if definition and definition.ask]
    if len(asks) == len(names):
        return asks
    if questions:
        return [questions[0]]
    unasked = [name for name, definition in zip(names, definitions, strict=True)
               if definition is None or not definition.ask]
    return [*asks, f"Could you tell me {_join([_field_phrase(bundle, name) for name in unasked])}?"]


def _asks(template: Template) -> bool:
    return "?" in template.text


def _confirmation_question(bundle: AgentBundle, tool_id: str) -> str:
    tool = bundle.tool(tool_id)
    described = (tool.description if tool else "").strip().rstrip(".")
    return f"Shall I go ahead and {_lower_first(described) or f'run {tool_id}'}? Please answer yes or no."


def _field_phrase(bundle: AgentBundle, name: str) -> str:
    definition = bundle.field(name)
    described = " ".join((definition.description if definition else "").split()).rstrip(".")
    phrase = _lower_first(_first_clause(described) or name.replace("_", " "))
    return phrase if phrase.startswith(_ARTICLES + _WH_WORDS) else f"your {phrase}"


def _first_clause(text: str) -> str:
    """"The order number printed on the email, e.g. NW-1" -> "The order number printed on the email"."""
    return re.split(r",\s*(?:e\.g\.|for example\b|such as\b|like\b)|\s+\(", text, maxsplit=1)[0].strip()


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[1].isupper():  # an acronym: "SIM swap", "VIP line"
        return text
    return text[:1].lower() + text[1:]


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
