"""The fallback: what is sent when no compliant draft exists — never the violating text.

The first FALLBACK template in reach (the plan lists them most specific first: step, scenario,
applied rule, global) whose placeholders all have values this turn, rendered and formatted for the
channel; with none, the built-in safe reply. The reference system sent the raw template with its
`{{ }}` placeholders, or the violating reply itself when no template was attached to a rule.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from chalicelib.domain.template import Template
from chalicelib.focal.types import Plan

logger = Logger(child=True)

SAFE_REPLY = "I'm sorry, I can't help with that right now. A member of our team will follow up with you."


def choose_fallback(
    plan: Plan,
    format_reply: Callable[[str], str],
    *,
    accept: Callable[[str], bool] | None = None,
) -> tuple[Template | None, str]:
    """(template, text to send); (None, the built-in safe reply) when no template fits.

    A template is skipped when a placeholder has no value, or when `accept` (the caller's
    hard-constraint check of the formatted text) refuses it. Never raises.
    """
    for template in plan.fallbacks:
        if not template.can_render(plan.variables):
            logger.info("fallback template skipped: a placeholder has no value",
                        extra={"template_id": template.id})
            continue
        text = format_reply(template.render(plan.variables))
        if not text.strip():
            logger.info("fallback template skipped: renders empty", extra={"template_id": template.id})
            continue
        if accept is not None and not accept(text):
            logger.warning("fallback template skipped: it breaks a hard constraint",
                           extra={"template_id": template.id})
            continue
        return template, text
    logger.info("no fallback template fits; sending the built-in safe reply",
                extra={"fallback_templates": len(plan.fallbacks)})
    return None, format_reply(SAFE_REPLY)
