"""Resolve a turn's configuration from its six layers, and say which layer set each key.

Layers, lowest first: platform < tenant < agent < channel < scenario < step (domain/config.py).
A later layer wins, `null` never overrides, nested sections merge key by key. Unlike the
reference system's shallow merge (runtime.md §1.4, which drops nested overrides), every leaf
is merged on its own and reported in `provenance` ("llm.tasks.judge.model" -> "scenario").

Resolution is cached per container by a version key (platform digest, tenant layer digest,
agent + bundle version, channel, scenario, step): a warm turn costs a dict lookup, and any change
of a layer changes the key, so a new config is visible on the next turn with no invalidation.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from chalicelib.config.ceilings import ceilings_from_env, platform_ceilings, within_ceilings
from chalicelib.domain.bundle import AgentBundle, PublishedBundle
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.config import CHANNEL_DEFAULTS, Config, Layer, Section
from chalicelib.domain.errors import InvalidInput, NotFound

LayerDoc = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    config: Config
    provenance: dict[str, str]  # "dotted.key" -> layer name, for every leaf key

    def to_json(self) -> dict[str, Any]:
        """The API view. It never names the platform's key variable (llm.api_key_env): that name
        is the platform's business, and a tenant that knows it has half of a targeted attack."""
        config = self.config.model_dump(mode="json")
        config["llm"]["api_key_env"] = None
        return {"config": config, "provenance": dict(self.provenance)}


def resolve(layers: Sequence[tuple[Layer, LayerDoc]]) -> ResolvedConfig:
    """Merge the layers over the code defaults. Raises InvalidInput if the merge is not a valid Config.

    Layers are validated when written (domain.config.validate_layer); this is the backstop.
    """
    merged: dict[str, Any] = Config().model_dump()
    provenance = {key: Layer.PLATFORM.value for key in _leaf_keys(Config)}
    ceilings: dict[str, Any] | None = None
    for layer, doc in layers:
        kept = doc
        if layer is not Layer.PLATFORM:  # a later layer may lower a platform ceiling, never raise it
            ceilings = ceilings if ceilings is not None else platform_ceilings(merged)
            kept = within_ceilings(doc, ceilings)
        _merge(merged, kept, "", layer.value, provenance)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput.many(
            [
                (".".join(str(part) for part in error["loc"]), error["msg"])
                for error in exc.errors(include_input=False, include_url=False)
            ]
        ) from None
    return ResolvedConfig(config=config, provenance=provenance)


def _merge(
    target: dict[str, Any], doc: LayerDoc, prefix: str, layer: str, provenance: dict[str, str]
) -> None:
    for key, value in doc.items():
        if value is None:
            continue  # null never overrides
        dotted = f"{prefix}{key}"
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge(current, value, f"{dotted}.", layer, provenance)
        else:
            target[key] = value
            provenance[dotted] = layer


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            keys.extend(_leaf_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _merged(base: LayerDoc, over: LayerDoc) -> dict[str, Any]:
    """`over` on top of `base`, section by section (both are platform documents)."""
    merged: dict[str, Any] = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged


@dataclass(frozen=True, slots=True)
class ConfigPosition:
    """Where a turn stands, as far as config goes: the layers above the agent's that apply to it."""

    channel: str | None = None
    scenario_id: str | None = None
    step_id: str | None = None


NOWHERE = ConfigPosition()  # the agent's own config: no channel, no scenario


def layers_for(
    platform: LayerDoc, tenant: LayerDoc, bundle: AgentBundle, at: ConfigPosition = NOWHERE
) -> list[tuple[Layer, LayerDoc]]:
    """The six layers of a turn, lowest first.

    Raises InvalidInput (path `channel`) for a name that is no channel, or `step` without a
    scenario; NotFound for a scenario or step the bundle does not have. A known channel with no
    section in the bundle contributes an empty layer.
    """
    channel, scenario_id, step_id = at.channel, at.scenario_id, at.step_id
    defaults = CHANNEL_DEFAULTS.get(channel or "")
    layers: list[tuple[Layer, LayerDoc]] = [
        (Layer.PLATFORM, _merged(defaults, platform) if defaults else platform),
        (Layer.TENANT, tenant),
        (Layer.AGENT, bundle.agent.config),
    ]
    if channel is not None:
        try:
            name = ChannelName(channel)
        except ValueError:
            known = ", ".join(item.value for item in ChannelName)
            raise InvalidInput.at("channel", f"unknown channel (one of {known})") from None
        section = bundle.channels.get(name)
        layers.append((Layer.CHANNEL, section.config if section is not None else {}))
    if step_id is not None and scenario_id is None:
        raise InvalidInput.at("step", "a step needs its scenario")
    if scenario_id is not None:
        scenario = bundle.scenario(scenario_id)
        if scenario is None:
            raise NotFound("the agent has no such scenario", scenario=scenario_id)
        layers.append((Layer.SCENARIO, scenario.config))
        if step_id is not None:
            step = scenario.step(step_id)
            if step is None:
                raise NotFound("the scenario has no such step", scenario=scenario_id, step=step_id)
            layers.append((Layer.STEP, step.config))
    return layers


def layer_digest(layer: LayerDoc) -> str:
    """A short content hash of a layer: its version, for cache keys."""
    data = json.dumps(layer, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class ConfigResolver:
    """resolve() with a bounded per-container cache keyed by the versions of every layer."""

    def __init__(self, platform: LayerDoc, max_entries: int = 1024) -> None:
        self.platform: LayerDoc = platform
        self._platform_digest = layer_digest(platform)
        self._cache: OrderedDict[str, ResolvedConfig] = OrderedDict()
        self._max = max_entries

    def for_turn(
        self,
        tenant_layer: LayerDoc,
        published: PublishedBundle,
        at: ConfigPosition = NOWHERE,
        *,
        tenant_version: str | None = None,
    ) -> ResolvedConfig:
        """The resolved config of one turn position; errors as layers_for.

        `tenant_version` may name the tenant layer's version; by default its content digest is used.
        """
        key = "|".join(
            (
                self._platform_digest,
                tenant_version or layer_digest(tenant_layer),
                published.tenant_id,
                published.agent_id,
                str(published.version),
                at.channel or "",
                at.scenario_id or "",
                at.step_id or "",
            )
        )
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        resolved = resolve(
            layers_for(
                self.platform,
                tenant_layer,
                published.bundle,
                at,
            )
        )
        self._cache[key] = resolved
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return resolved

    def clear(self) -> None:
        self._cache.clear()


def platform_layer_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Platform overrides from the environment (read once per container by services()).

    RUCHE_ALLOW_PRIVATE_NETWORK -> network.allow_private; RUCHE_LLM_PROVIDER, RUCHE_LLM_BASE_URL,
    RUCHE_LLM_API_KEY_ENV -> llm.provider, llm.base_url, llm.api_key_env; RUCHE_TOOLS_BASE_URL ->
    tools.base_url; the ceilings of config/ceilings.py (RUCHE_RATE_LIMIT_*, RUCHE_QUOTA_*). Unset
    means the code default.
    """
    layer: dict[str, Any] = {}
    allow = environ.get("RUCHE_ALLOW_PRIVATE_NETWORK")
    if allow is not None and allow.strip():
        layer["network"] = {"allow_private": allow.strip().lower() in {"1", "true", "yes", "on"}}
    llm = {
        key: environ[var]
        for key, var in (
            ("provider", "RUCHE_LLM_PROVIDER"),
            ("base_url", "RUCHE_LLM_BASE_URL"),
            ("api_key_env", "RUCHE_LLM_API_KEY_ENV"),
        )
        if environ.get(var)
    }
    if llm:
        layer["llm"] = llm
    for section, values in ceilings_from_env(environ).items():  # RUCHE_RATE_LIMIT_*, RUCHE_QUOTA_*
        layer.setdefault(section, {}).update(values)
    if environ.get("RUCHE_TOOLS_BASE_URL"):
        layer["tools"] = {"base_url": environ["RUCHE_TOOLS_BASE_URL"]}
    return layer
