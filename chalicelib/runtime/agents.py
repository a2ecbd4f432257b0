"""Agent-as-code operations: publish, read, version, roll back and delete bundles, and edit one item.

Every change publishes a whole new version through BundleStore.publish (atomic, conditional on the
version it was based on), after the bundle is validated as a whole (parse_bundle), its tool URLs
and LLM base URLs pass the network guard, and its rules and scenarios are embedded. Nothing is
written when any of those fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from chalicelib.config.key_policy import platform_key_problems
from chalicelib.config.resolver import ConfigPosition, ResolvedConfig, resolve
from chalicelib.domain.bundle import AgentBundle, NewVersion, PublishedBundle, parse_bundle
from chalicelib.domain.config import Config, Layer
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.ids import is_valid_id
from chalicelib.domain.tool import resolve_url
from chalicelib.providers.network import check_url
from chalicelib.runtime.ingest import forget_binding
from chalicelib.runtime.services import Services
from chalicelib.stores.ports import VersionInfo

ItemKind = Literal["rules", "scenarios", "templates", "tools", "fields"]
ITEM_KINDS: dict[str, str] = {
    "rules": "id",
    "scenarios": "id",
    "templates": "id",
    "tools": "id",
    "fields": "name",
}


@dataclass(frozen=True, slots=True)
class AgentRef:
    """An agent of a tenant: the two ids every change to an agent travels with."""

    tenant_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class ItemRef:
    """One item of an agent's bundle: its kind (a key of ITEM_KINDS, checked on use) and its id."""

    kind: str
    item_id: str


class AgentHead(TypedDict):
    """An agent and its latest version (api/views.py AgentSummary is its answer). A TypedDict: the
    pair is already the listing's shape, and it compares equal to the plain mapping callers expect."""

    agent_id: str
    version: int


def parse_if_match(value: str | None) -> int | None:
    """`If-Match: 3` (or `"3"`, `W/"3"`) as 3; None when absent or `*`. Raises InvalidInput otherwise."""
    if value is None or value.strip() in {"", "*"}:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput.at("If-Match", "must be an agent version number")
    return int(text)


def parse_version(value: str | None, path: str = "version") -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput.at(path, "must be a version number (1, 2, ...)")
    return int(value)


def publish(
    services: Services, agent: AgentRef, document: object, *, if_match: str | None = None, source: str | None = None,
) -> int:
    """Validate and publish `document` as the agent's next version; return the version number.
    `source`: the YAML text `document` was read from, kept so a pull returns it as written.

    Raises InvalidInput (every problem with its path), Conflict when If-Match is stale.
    """
    if not is_valid_id(agent.agent_id):
        raise InvalidInput.at(
            "agent_id", "letters, digits, _ . - (at most 64, starting with a letter or digit)"
        )
    expected = parse_if_match(if_match)
    bundle = parse_bundle(document)
    return _publish_bundle(services, agent, bundle, expected, source=source)


def _publish_bundle(
    services: Services, agent: AgentRef, bundle: AgentBundle, expected_version: int | None,
    *, source: str | None = None,
) -> int:
    check_network(bundle, allow_private=services.platform_config.network.allow_private,
                  platform=services.platform_config)
    tenant_layer = services.config_store.get_tenant_layer(agent.tenant_id)
    config = resolve(
        [
            (Layer.PLATFORM, services.resolver.platform),
            (Layer.TENANT, tenant_layer),
            (Layer.AGENT, bundle.agent.config),
        ]
    ).config
    embedder = services.embedder_for(agent.tenant_id, config)
    from chalicelib.focal.index import embed_bundle  # noqa: PLC0415 - numpy, on the publish path only

    vectors = embed_bundle(bundle, embedder)
    new = NewVersion(bundle, vectors, embedder.model, source)
    return services.bundles.publish(agent.tenant_id, agent.agent_id, new, expected_version=expected_version)


def source_text(published: PublishedBundle) -> str:
    """The YAML of `GET /v1/agents/{id}?format=source`: the bundle as it was published, comments
    included; a version published as JSON (or item by item) comes back as canonical YAML of the bundle."""
    if published.source is not None:
        return published.source
    import yaml  # noqa: PLC0415 - only this read needs it

    return yaml.safe_dump(published.bundle.to_document(), sort_keys=False, allow_unicode=True, width=100)


def check_network(bundle: AgentBundle, *, allow_private: bool, platform: Config | None = None) -> None:
    """Refuse tool URLs, tools.base_url and llm.base_url values that reach private addresses, and
    (given the platform's config) layers that send LLM calls elsewhere without their own key. All at
    once. A relative tool url is checked against the agent's own tools.base_url when it sets one;
    otherwise it is checked at call time, against the tenant's or the platform's."""
    agent_base = (bundle.agent.config.get("tools") or {}).get("base_url")
    targets = [(f"tools[{index}].url", url) for index, tool in enumerate(bundle.tools)
               if (url := resolve_url(tool.url, agent_base if isinstance(agent_base, str) else None))]
    layers = _config_layers(bundle)
    for path, layer in layers:
        for section in ("llm", "tools"):
            base_url = (layer.get(section) or {}).get("base_url")
            if isinstance(base_url, str):
                targets.append((f"{path}.{section}.base_url", base_url))
    problems: list[tuple[str, str]] = []
    for path, url in targets:
        try:
            check_url(url, allow_private, at_publish=True, path=path)
        except InvalidInput as exc:
            problems += [(error["path"], error["message"]) for error in exc.details.get("errors", [])]
    if platform is not None:
        for path, layer in layers:
            problems += platform_key_problems(layer, path, platform)
    if problems:
        raise InvalidInput.many(problems)


def _config_layers(bundle: AgentBundle) -> list[tuple[str, dict[str, Any]]]:
    """Every config layer a bundle writes, with its path: agent, channels, scenarios, steps."""
    layers: list[tuple[str, dict[str, Any]]] = [("agent.config", bundle.agent.config)]
    layers += [(f"channels.{name.value}.config", section.config) for name, section in bundle.channels.items()]
    for index, scenario in enumerate(bundle.scenarios):
        layers.append((f"scenarios[{index}].config", scenario.config))
        layers += [
            (f"scenarios[{index}].steps[{position}].config", step.config)
            for position, step in enumerate(scenario.steps)
        ]
    return layers


def load(services: Services, tenant_id: str, agent_id: str, version: int | None = None) -> PublishedBundle:
    """The published bundle (the latest, or `version`). Raises NotFound (also for another tenant's)."""
    published = services.bundles.load(tenant_id, agent_id, version)
    if published is None:
        raise NotFound(
            "no such agent" if version is None else "no such agent version",
            agent_id=agent_id,
            **({"version": version} if version is not None else {}),
        )
    return published


def versions(services: Services, tenant_id: str, agent_id: str) -> list[VersionInfo]:
    """The history, oldest first. Raises NotFound for an unknown agent."""
    found: list[VersionInfo] = services.bundles.versions(tenant_id, agent_id)
    if not found:
        raise NotFound("no such agent", agent_id=agent_id)
    return sorted(found, key=lambda info: info.version)


def rollback(
    services: Services, tenant_id: str, agent_id: str, version: int, *, if_match: str | None = None
) -> int:
    """Republish an older version as the newest (with its stored embeddings); return the new number."""
    expected = parse_if_match(if_match)
    latest = load(services, tenant_id, agent_id)
    old = load(services, tenant_id, agent_id, version)
    again = NewVersion(old.bundle, old.vectors, old.embedding_model, old.source)
    return services.bundles.publish(tenant_id, agent_id, again,
                                    expected_version=expected if expected is not None else latest.version)


def delete(services: Services, tenant_id: str, agent_id: str) -> None:
    """Delete the agent and its channel bindings. Raises NotFound.

    The head is flagged first, so the liveness checks refuse any write for the agent at once (a
    binding another container still caches included); then its bindings go, so its webhooks
    answer 404 here at once and elsewhere within ingest.BINDING_CACHE_S.
    """
    if not services.bundles.delete(tenant_id, agent_id):
        raise NotFound("no such agent", agent_id=agent_id)
    for binding in services.bindings.list(tenant_id, agent_id):
        forget_binding(binding.binding_id)
        services.bindings.delete(tenant_id, binding.binding_id)


def list_agents(services: Services, tenant_id: str) -> list[AgentHead]:
    return [
        AgentHead(agent_id=agent_id, version=version)
        for agent_id, version in sorted(services.bundles.list_agents(tenant_id))
    ]


def _kind(kind: str) -> str:
    if kind not in ITEM_KINDS:
        raise NotFound("no such kind of agent item", kind=kind)
    return ITEM_KINDS[kind]


def get_item(services: Services, tenant_id: str, agent_id: str, kind: str, item_id: str) -> dict[str, Any]:
    """One rule / scenario / template / tool / field of the latest version. Raises NotFound."""
    id_key = _kind(kind)
    document = load(services, tenant_id, agent_id).bundle.to_document()
    for item in document.get(kind, []):
        if item.get(id_key) == item_id:
            found: dict[str, Any] = item
            return found
    raise NotFound(f"no such item in {kind}", agent_id=agent_id, item_id=item_id)


def put_item(
    services: Services, agent: AgentRef, ref: ItemRef, *, item: object, if_match: str | None = None
) -> int:
    """Create or replace one item (by id) in the latest bundle and publish; return the new version.

    The body's id, when given, must equal the path's. Problems are reported with their path in the
    whole bundle (`rules[3].templates[0]`). Raises NotFound, InvalidInput, Conflict.
    """
    id_key, kind, item_id = _kind(ref.kind), ref.kind, ref.item_id
    if not isinstance(item, dict):
        raise InvalidInput.at("", "the item must be an object")
    if item.get(id_key, item_id) != item_id:
        raise InvalidInput.at(id_key, "must equal the id in the path")
    latest = load(services, agent.tenant_id, agent.agent_id)
    document = latest.bundle.to_document()
    items: list[dict[str, Any]] = list(document.get(kind, []))
    replacement = {**item, id_key: item_id}
    positions = [index for index, existing in enumerate(items) if existing.get(id_key) == item_id]
    if positions:
        items[positions[0]] = replacement
    else:
        items.append(replacement)
    document[kind] = items
    return _republish(services, agent, document, latest.version, if_match=if_match)


def delete_item(services: Services, agent: AgentRef, ref: ItemRef, *, if_match: str | None = None) -> int:
    """Remove one item and publish; a removal that breaks a reference is InvalidInput with its path."""
    id_key, kind = _kind(ref.kind), ref.kind
    latest = load(services, agent.tenant_id, agent.agent_id)
    document = latest.bundle.to_document()
    items = [item for item in document.get(kind, []) if item.get(id_key) != ref.item_id]
    if len(items) == len(document.get(kind, [])):
        raise NotFound(f"no such item in {kind}", agent_id=agent.agent_id, item_id=ref.item_id)
    document[kind] = items
    return _republish(services, agent, document, latest.version, if_match=if_match)


def _republish(
    services: Services, agent: AgentRef, document: dict[str, Any], base: int, *, if_match: str | None
) -> int:
    expected = parse_if_match(if_match)
    bundle = parse_bundle(document)
    return _publish_bundle(services, agent, bundle, expected if expected is not None else base)


def resolved_config(services: Services, agent: AgentRef, at: ConfigPosition) -> ResolvedConfig:
    """The config a turn at this position would run with, and the layer of each key.

    Raises NotFound (agent, scenario, step), InvalidInput (a name that is no channel).
    """
    published = load(services, agent.tenant_id, agent.agent_id)
    tenant_layer = services.config_store.get_tenant_layer(agent.tenant_id)
    return services.resolver.for_turn(tenant_layer, published, at)
