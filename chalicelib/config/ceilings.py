"""Platform ceilings: limits and quotas a tenant may lower, never raise past the platform's value.

The platform layer (code defaults + environment) sets each key of CEILING_KEYS; a tenant layer may
write a smaller value (a stricter limit) but a larger one is refused when written (422, one problem
per key, `ceiling_problems`) and ignored when resolved (`within_ceilings`), so a value stored
before the platform lowered its ceiling is never honoured either. A platform value of `null`
means "unlimited" (quotas): any tenant value is then a lowering.

The platform sets a ceiling from the environment with `RUCHE_<KEY IN UPPER CASE, dots as _>`,
e.g. RUCHE_RATE_LIMIT_BINDING_PER_MINUTE=120 or RUCHE_QUOTA_MONTHLY_TOKENS=5000000.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.config import Config

CEILING_KEYS: tuple[str, ...] = (
    "rate_limit.requests_per_minute",
    "rate_limit.binding_per_minute",
    "rate_limit.visitor_per_minute",
    "rate_limit.new_visitors_per_minute",
    "quota.monthly_tokens",
    "quota.monthly_turns",
)


def env_name(dotted: str) -> str:
    """The environment variable that sets a ceiling: rate_limit.binding_per_minute -> RUCHE_RATE_LIMIT_..."""
    return "RUCHE_" + dotted.upper().replace(".", "_")


def ceilings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The platform layer's ceilings set in the environment (digits only; anything else is ignored)."""
    layer: dict[str, Any] = {}
    for dotted in CEILING_KEYS:
        raw = environ.get(env_name(dotted), "").strip()
        if raw.isdigit():
            section, name = dotted.split(".", 1)
            layer.setdefault(section, {})[name] = int(raw)
    return layer


def _value(doc: Mapping[str, Any], dotted: str) -> Any:
    section, name = dotted.split(".", 1)
    part = doc.get(section)
    return part.get(name) if isinstance(part, Mapping) else None


def _exceeds(value: Any, ceiling: Any) -> bool:
    # bool is an int in Python; a type error is validate_layer's to report, not ours.
    if ceiling is None or isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return bool(value > ceiling)


def ceiling_problems(layer: object, platform: Config) -> list[tuple[str, str]]:
    """(path, message) for every key of a tenant layer above the platform's ceiling; [] if none."""
    if not isinstance(layer, Mapping):
        return []
    resolved = platform.model_dump()
    problems: list[tuple[str, str]] = []
    for dotted in CEILING_KEYS:
        value, ceiling = _value(layer, dotted), _value(resolved, dotted)
        if _exceeds(value, ceiling):
            problems.append((dotted, f"may not exceed the platform's ceiling of {ceiling} (lower it, never raise it)"))
    return problems


def within_ceilings(doc: Mapping[str, Any], ceilings: Mapping[str, Any]) -> Mapping[str, Any]:
    """`doc` without the ceiling keys whose value exceeds `ceilings` (the merged platform values).

    Such a key then falls through to the platform's value, as a `null` would.
    """
    over = [dotted for dotted in CEILING_KEYS if _exceeds(_value(doc, dotted), _value(ceilings, dotted))]
    if not over:
        return doc
    trimmed = {key: dict(value) if isinstance(value, Mapping) else value for key, value in doc.items()}
    for dotted in over:
        section, name = dotted.split(".", 1)
        del trimmed[section][name]
    return trimmed


def platform_ceilings(merged_platform: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot of the ceiling values of a merged platform document."""
    snapshot: dict[str, Any] = {}
    for dotted in CEILING_KEYS:
        section, name = dotted.split(".", 1)
        snapshot.setdefault(section, {})[name] = _value(merged_platform, dotted)
    return snapshot
