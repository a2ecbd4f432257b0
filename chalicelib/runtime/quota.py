"""Monthly quotas (config `quota.*`): checked against the month's usage that the turn's first
batched read brings along, so a warm turn pays no extra round trip for it.

Overshoot bound: the month's counters are read when a turn starts and grow when it commits, so
turns that start together all see the same total. A tenant can exceed a quota by at most the turns
it has in flight at that moment (one per session) and, for tokens, what those turns spend.
"""

from __future__ import annotations

from chalicelib.domain.bundle import PublishedBundle
from chalicelib.domain.config import Config
from chalicelib.domain.errors import QuotaExceeded, RucheError
from chalicelib.domain.rule import Scope
from chalicelib.domain.template import TemplateMode
from chalicelib.domain.usage import MonthUsage, QuotaBreach, quota_breach
from chalicelib.focal.enforcement import SAFE_REPLY
from chalicelib.runtime.events import emit_event
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services


def breach_of(svc: Services, config: Config, month: MonthUsage, now_s: float) -> QuotaBreach | None:
    """The quota this turn would go past, or None. The platform layer's values are ceilings: the
    tighter of the tenant's and the platform's applies, whatever the tenant layer says."""
    limits = {"monthly_tokens": config.quota.monthly_tokens, "monthly_turns": config.quota.monthly_turns}
    platform = svc.platform_config.quota
    ceilings = {"monthly_tokens": platform.monthly_tokens, "monthly_turns": platform.monthly_turns}
    return quota_breach(limits, ceilings, month, now_s)


def quota_reply(published: PublishedBundle) -> str:
    """What a channel user gets past the quota: the agent's global fallback template (one needing no
    values, since no turn ran to find any), else the built-in safe reply."""
    for template in published.bundle.templates:
        if template.mode is TemplateMode.FALLBACK and template.scope is Scope.GLOBAL and template.can_render({}):
            return template.render({})
    return SAFE_REPLY


def announce(svc: Services, tenant_id: str, breach: QuotaBreach) -> None:
    """Send the `quota_exceeded` event to the tenant's endpoints, once per quota and month. Never raises:
    the refused turn is already committed."""
    try:
        if svc.usage.first_breach(tenant_id, breach.month, breach.limit):
            emit_event(svc, tenant_id, "quota_exceeded", {"limit": breach.limit, "quota": breach.quota,
                                                          "used": breach.used, "reset_at": breach.reset_at})
    except RucheError as exc:
        logger.warning("quota_exceeded event not sent", extra={"error_code": exc.code, "limit": breach.limit})


def refusal(breach: QuotaBreach) -> QuotaExceeded:
    """The 429 of an API turn past its quota."""
    return QuotaExceeded(f"the tenant's {breach.limit.replace('_', ' ')} quota is used up until {breach.reset_at}",
                         limit=breach.limit, quota=breach.quota, reset_at=breach.reset_at,
                         retry_after_s=breach.retry_after_s)
