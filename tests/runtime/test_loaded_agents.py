"""The container's loaded agents: one build per version, a bounded LRU, a TTL on the injected clock."""

from __future__ import annotations

from typing import Any, cast

import pytest

from chalicelib.domain.bundle import AgentBundle, PublishedBundle
from chalicelib.domain.errors import NotFound
from chalicelib.focal.enforcement.expressions import check_expressions
from chalicelib.focal.index import embed_bundle
from chalicelib.runtime.loaded_agents import MAX_LOADED_AGENTS, LoadedAgents
from chalicelib.stores.ports import BundleStore
from tests.api.harness import Api
from tests.api.harness import a_bundle as api_bundle
from tests.focal.enforcement.test_expressions import CAP, TIER_CAP
from tests.focal.factories import AGENT, TENANT, a_bundle, a_field, a_published, a_rule, an_embedder


class VersionsInMemory:
    """The two reads LoadedAgents makes of a BundleStore, counted (a Query each in DynamoDB)."""

    def __init__(self, bundle: AgentBundle, latest: int = 1, **published: Any) -> None:
        self.bundle, self.latest, self.published = bundle, latest, published
        self.loads: list[int] = []

    def latest_version(self, tenant_id: str, agent_id: str) -> int | None:
        return self.latest if (tenant_id, agent_id) == (TENANT, AGENT) else None

    def load(self, tenant_id: str, agent_id: str, version: int | None = None) -> PublishedBundle | None:
        if (tenant_id, agent_id) != (TENANT, AGENT) or version is None or not 1 <= version <= self.latest:
            return None
        self.loads.append(version)
        return a_published(self.bundle, version=version, **self.published)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def loaded_agents(store: VersionsInMemory, **options: Any) -> LoadedAgents:
    return LoadedAgents(cast(BundleStore, store), **options)


def test_a_second_turn_on_the_same_version_does_not_rebuild() -> None:
    store = VersionsInMemory(a_bundle(rules=[a_rule()]))
    agents = loaded_agents(store)

    first = agents.version(TENANT, AGENT, 1)
    again = agents.latest(TENANT, AGENT)

    assert again is first
    assert agents.stats().builds == 1
    assert agents.stats().hits == 1
    assert store.loads == [1]


def test_a_newly_published_version_is_a_new_entry() -> None:
    store = VersionsInMemory(a_bundle(rules=[a_rule()]))
    agents = loaded_agents(store)
    first = agents.latest(TENANT, AGENT)

    store.latest = 2
    newer = agents.latest(TENANT, AGENT)

    assert newer is not first
    assert (first.published.version, newer.published.version) == (1, 2)
    assert agents.stats().builds == 2
    assert agents.stats().entries == 2
    assert agents.version(TENANT, AGENT, 1) is first  # a turn still on version 1 keeps its agent


def test_the_least_recently_used_version_is_evicted_beyond_the_bound() -> None:
    store = VersionsInMemory(a_bundle(rules=[a_rule()]), latest=4)
    agents = loaded_agents(store, max_entries=2)
    first = agents.version(TENANT, AGENT, 1)
    second = agents.version(TENANT, AGENT, 2)
    assert agents.version(TENANT, AGENT, 1) is first  # 1 is now the most recently used

    agents.version(TENANT, AGENT, 3)

    assert agents.stats().entries == 2
    assert agents.stats().evictions == 1
    assert agents.version(TENANT, AGENT, 1) is first
    assert agents.version(TENANT, AGENT, 2) is not second
    assert agents.stats().builds == 4


def test_the_default_bound_keeps_a_bounded_number_of_versions() -> None:
    store = VersionsInMemory(a_bundle(rules=[CAP]), latest=2 + MAX_LOADED_AGENTS)
    agents = loaded_agents(store)
    oldest = agents.version(TENANT, AGENT, 1)
    for version in range(2, 2 + MAX_LOADED_AGENTS):
        agents.version(TENANT, AGENT, version)
    assert agents.version(TENANT, AGENT, 1) is not oldest
    assert agents.stats().entries == MAX_LOADED_AGENTS


def test_an_entry_older_than_the_ttl_is_built_again_by_the_injected_clock() -> None:
    clock = Clock()
    store = VersionsInMemory(a_bundle(rules=[a_rule()]))
    agents = loaded_agents(store, ttl_s=60.0, clock=clock)
    first = agents.version(TENANT, AGENT, 1)

    clock.now += 59.0
    assert agents.version(TENANT, AGENT, 1) is first
    clock.now += 1.0
    again = agents.version(TENANT, AGENT, 1)

    assert again is not first
    assert agents.stats().expirations == 1
    assert agents.stats().builds == 2
    assert store.loads == [1, 1]


def test_without_a_ttl_time_never_expires_an_entry() -> None:
    clock = Clock()
    agents = loaded_agents(VersionsInMemory(a_bundle()), clock=clock)
    first = agents.version(TENANT, AGENT, 1)
    clock.now += 10 * 365 * 86400.0
    assert agents.version(TENANT, AGENT, 1) is first


def test_an_unknown_agent_or_version_is_not_found_and_caches_nothing() -> None:
    agents = loaded_agents(VersionsInMemory(a_bundle()))
    with pytest.raises(NotFound):
        agents.latest(TENANT, "other")
    with pytest.raises(NotFound):
        agents.version(TENANT, AGENT, 9)
    assert agents.stats().entries == 0
    assert agents.stats().builds == 0


def test_bundle_constraints_compile_once_per_version() -> None:
    bundle = a_bundle(rules=[CAP, TIER_CAP, a_rule("soft")], fields=[a_field("max_discount", "number")])
    agents = loaded_agents(VersionsInMemory(bundle, latest=8))
    first = agents.version(TENANT, AGENT, 7).constraints
    again = agents.version(TENANT, AGENT, 7).constraints
    newer = agents.version(TENANT, AGENT, 8).constraints
    assert set(first) == {"cap", "tier_cap"}
    assert again is first
    assert newer is not first
    check = check_expressions("Take 30% off", [TIER_CAP], {"max_discount": 20}, compiled=first)
    assert [violation.rule_id for violation in check.violations] == ["tier_cap"]


def test_the_index_of_a_published_version_is_built_once_per_container() -> None:
    bundle = a_bundle(rules=[a_rule()])
    publisher = an_embedder()
    store = VersionsInMemory(bundle, latest=2, vectors=embed_bundle(bundle, publisher),
                             embedder=None)
    agents = loaded_agents(store)
    embedder = an_embedder()
    first = agents.version(TENANT, AGENT, 1).index(embedder)
    assert agents.version(TENANT, AGENT, 1).index(embedder) is first
    assert agents.version(TENANT, AGENT, 2).index(embedder) is not first


def test_the_services_object_owns_one_loaded_agents_cache() -> None:
    from chalicelib.runtime.services import Services, Settings

    svc = Services(Settings.from_env({}), {})
    assert svc.agents is svc.agents
    assert Services(Settings.from_env({}), {}).agents is not svc.agents


def test_turns_through_the_api_build_each_published_version_once(api: Api) -> None:
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/desk", key, api_bundle()).status_code == 200
    turn = {"user_id": "u1", "message": "hello"}

    for _ in range(2):
        assert api.call("POST", "/v1/agents/desk/turns", key, turn).status_code == 200
    assert api.services.agents.stats().builds == 1

    assert api.call("PUT", "/v1/agents/desk", key, api_bundle(agent={"name": "Support, version 2"})).status_code == 200
    assert api.call("POST", "/v1/agents/desk/turns", key, turn).status_code == 200
    assert api.services.agents.stats().builds == 2
    assert api.call("POST", "/v1/agents/desk/turns", key, turn).status_code == 200
    assert api.services.agents.stats().builds == 2
