"""Generate the reply: one LLM call from the plan, then placeholders filled and the text formatted.

The model never sees a stored field value: it is told which placeholders it may write
({{ email }}) and the engine fills them after the call. With `feedback` (a regeneration), the
prompt carries the previous reply and its enumerated violations. An EXCLUSIVE plan never comes
here: the pipeline sends `render_exclusive(plan, ...)` instead.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.domain.config import ResponseConfig
from chalicelib.domain.template import format_value, lookup
from chalicelib.domain.turn import Violation
from chalicelib.focal.formatting import format_reply
from chalicelib.focal.types import Draft, Plan, TurnContext
from chalicelib.providers.llm import LlmMessage, LlmProvider, LlmRequest, ProviderError

logger = Logger(child=True)

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
_ROLES: Mapping[str, str] = {"user": "user", "agent": "assistant", "assistant": "assistant"}

Feedback = tuple[str, tuple[Violation, ...]]


def generate(plan: Plan, ctx: TurnContext, llm: LlmProvider, *, feedback: Feedback | None = None) -> Draft:
    """One generation call. Returns the formatted, filled reply; Draft(failed=True) on ProviderError.

    Model, temperature and max_tokens come from llm.tasks.generation, else from llm itself.
    """
    llm_config = ctx.config.llm
    task = llm_config.tasks.generation
    request = LlmRequest(
        task="generation",
        messages=build_messages(plan, ctx, feedback),
        model=task.model,
        temperature=task.temperature if task.temperature is not None else llm_config.temperature,
        max_tokens=task.max_tokens if task.max_tokens is not None else llm_config.max_tokens,
        timeout_s=llm_config.timeout_s,
        max_retries=llm_config.max_retries,
        offline_answer=plan.draft,
    )
    try:
        response = llm.complete(request)
    except ProviderError as exc:
        logger.warning("generation failed", extra={"code": exc.code, "regeneration": feedback is not None})
        return Draft(reply="", llm_calls=1, failed=True)
    reply = format_reply(fill_placeholders(response.text, plan.variables, plan.placeholders), ctx.config.response)
    return Draft(reply=reply, llm_calls=1, prompt_tokens=response.prompt_tokens,
                 completion_tokens=response.completion_tokens)


def render_exclusive(plan: Plan, response: ResponseConfig) -> str:
    """The EXCLUSIVE template of the plan, filled and formatted: the reply without generation.

    Raises ValueError when the plan has no exclusive template (a pipeline bug).
    """
    if plan.exclusive is None:
        raise ValueError("the plan has no exclusive template")
    return format_reply(plan.exclusive.render(plan.variables), response)


def fill_placeholders(text: str, variables: Mapping[str, Any], allowed: Collection[str] | None = None) -> str:
    """Replace {{ name }} / {{ tools.x.y }} with values, in one pass: a value that itself reads
    `{{ x }}` is inserted as text, never filled again. A placeholder with no value, or whose name
    is not in `allowed` (None: any name), is removed."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return format_value(lookup(variables, name)) if allowed is None or name in allowed else ""

    return _PLACEHOLDER.sub(fill, text)


def build_messages(plan: Plan, ctx: TurnContext, feedback: Feedback | None = None) -> tuple[LlmMessage, ...]:
    """System prompt from the plan, then recent history, then the user's message."""
    messages = [LlmMessage("system", system_prompt(plan, ctx, feedback))]
    for role, text in ctx.history:
        mapped = _ROLES.get(role)
        if mapped is not None and text:
            messages.append(LlmMessage("user" if mapped == "user" else "assistant", text))
    messages.append(LlmMessage("user", ctx.turn.message))
    return tuple(messages)


def system_prompt(plan: Plan, ctx: TurnContext, feedback: Feedback | None = None) -> str:
    """Everything the model needs to write this turn's reply, and no stored field value."""
    bundle = ctx.published.bundle
    lines = [f"You are {bundle.agent.name}, a conversational agent."]
    if bundle.agent.description:
        lines.append(bundle.agent.description)
    lines.append(f"Reply in the user's language ({ctx.turn.channel} channel, "
                 f"{ctx.config.response.format} text, at most {ctx.config.response.max_length} characters).")
    if plan.instructions:
        lines += ["", "Follow these instructions (most important first):"]
        lines += [f"- {instruction}" for instruction in plan.instructions]
    if plan.step_instruction:
        lines += ["", f"Current step: {plan.step_instruction}"]
    if plan.ask_fields:
        asked = [_describe_field(ctx, name) for name in plan.ask_fields]
        lines += ["", f"Ask the user for: {'; '.join(asked)}."]
    if plan.confirm_tool:
        tool = bundle.tool(plan.confirm_tool)
        what = tool.description if tool is not None and tool.description else plan.confirm_tool
        lines += ["", f"Before acting, ask the user to confirm this action with yes or no: {what}. "
                      "Do not say it is done."]
    if plan.suggestions:
        lines += ["", "Suggested wording (adapt it; keep its placeholders):"]
        lines += [f"- {template.text}" for template in plan.suggestions]
    hard = [rule.action for rule in plan.hard_rules]
    if hard:
        lines += ["", "Hard constraints (the reply must comply with every one):"]
        lines += [f"- {action}" for action in hard]
    if plan.handoff:
        lines += ["", "Tell the user a human colleague will take over the conversation."]
    names = [name for name in _placeholder_names(plan.variables)
             if plan.placeholders is None or name in plan.placeholders]
    lines += ["", "Write placeholders like {{ email }} rather than values you don't have; they are "
                  "filled in after you answer."]
    if names:
        shown = ", ".join(f"{{{{ {name} }}}}" for name in names)
        lines.append(f"Placeholders with a value this turn: {shown}")
    if feedback is not None:
        previous, violations = feedback
        lines += ["", "Your previous reply was:", "<<<", previous, ">>>",
                  "It breaks these rules:"]
        lines += [f"{index}. {violation.rule_id}: {violation.message}"
                  for index, violation in enumerate(violations, start=1)]
        lines.append("Write a new reply to the user's last message that fixes all of them.")
    return "\n".join(lines)


def _describe_field(ctx: TurnContext, name: str) -> str:
    definition = ctx.published.bundle.field(name)
    if definition is None or not definition.description:
        return name
    return f"{name} ({definition.description})"


def _placeholder_names(variables: Mapping[str, Any]) -> list[str]:
    """Names only, never values: fields known this turn and each tool's result keys."""
    names = [name for name in variables if name != "tools"]
    tools = variables.get("tools")
    if isinstance(tools, Mapping):
        for tool_id, result in tools.items():
            if isinstance(result, Mapping):
                names.extend(f"tools.{tool_id}.{key}" for key in result)
    return names
