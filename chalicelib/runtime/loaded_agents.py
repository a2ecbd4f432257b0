"""The container's loaded agents: one cache, by version, for everything derived from a bundle (DESIGN.md §3 phase 1).

Each turn learns the agent's latest version with its first batched read and takes the LoadedAgent
of that version from here; only a version this container has not loaded yet costs the one Query
that reads the bundle, then one build (focal/agent.py). A turn keeps the LoadedAgent it started
with, so a publish during the turn never changes it. Held by the Services object, never a module
global, so tests and containers each get their own.

Eviction: least recently used beyond `max_entries`, and, with `ttl_s`, an entry older than that
(by the injected clock) is loaded again on its next use. Versions are immutable, so the TTL only
bounds how long a version nobody publishes over keeps its memory in a busy container.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from chalicelib.domain.errors import NotFound
from chalicelib.stores.ports import BundleStore

if TYPE_CHECKING:
    from chalicelib.focal.agent import LoadedAgent

logger = Logger(child=True)

MAX_LOADED_AGENTS = 64  # a 50,000-rule agent holds tens of MB: bounded by count, most agents are small

AgentKey = tuple[str, str, int]  # (tenant, agent, version)


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    hits: int
    builds: int  # LoadedAgents built: one per version per container unless evicted or expired
    evictions: int  # by the bound
    expirations: int  # by the TTL


@dataclass(frozen=True, slots=True)
class _Entry:
    agent: LoadedAgent
    loaded_at: float


class LoadedAgents:
    """LoadedAgent by (tenant, agent, version): bounded LRU, optional TTL, one build per key at a time."""

    def __init__(self, store: BundleStore, *, max_entries: int = MAX_LOADED_AGENTS, ttl_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._store = store
        self._max, self._ttl_s, self._clock = max_entries, ttl_s, clock
        self._entries: OrderedDict[AgentKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[AgentKey, threading.Lock] = {}  # concurrent first turns build once
        self._hits = self._builds = self._evictions = self._expirations = 0

    def latest(self, tenant_id: str, agent_id: str) -> LoadedAgent:
        """The agent's latest published version (one GetItem to learn it). Raises NotFound for an
        unknown or deleted agent."""
        version = self._store.latest_version(tenant_id, agent_id)
        if version is None:
            raise NotFound(f"agent {agent_id!r} not found")
        return self.version(tenant_id, agent_id, version)

    def version(self, tenant_id: str, agent_id: str, version: int) -> LoadedAgent:
        """That version, loaded and built on first use. Raises NotFound when the store has no such version."""
        key = (tenant_id, agent_id, version)
        found = self._hit(key)
        if found is not None:
            return found
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            found = self._hit(key)  # another thread built it while this one waited
            if found is not None:
                return found
            try:
                agent = self._build(key)
            finally:
                with self._lock:
                    self._building.pop(key, None)
        return agent

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(entries=len(self._entries), hits=self._hits, builds=self._builds,
                              evictions=self._evictions, expirations=self._expirations)

    def _hit(self, key: AgentKey) -> LoadedAgent | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._ttl_s is not None and self._clock() - entry.loaded_at >= self._ttl_s:
                del self._entries[key]
                self._expirations += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry.agent

    def _build(self, key: AgentKey) -> LoadedAgent:
        tenant_id, agent_id, version = key
        published = self._store.load(tenant_id, agent_id, version)
        if published is None:
            raise NotFound(f"agent {agent_id!r} has no version {version}")
        # The engine (numpy with it) loads with the first turn, not at cold start (import budget).
        from chalicelib.focal.agent import load_agent  # noqa: PLC0415

        started = time.perf_counter()
        agent = load_agent(published)
        logger.info("agent version loaded", extra={
            "tenant_id": tenant_id, "agent_id": agent_id, "version": version,
            "rules": len(published.bundle.rules), "build_ms": round((time.perf_counter() - started) * 1000, 1)})
        with self._lock:
            self._builds += 1
            self._entries[key] = _Entry(agent, self._clock())
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
                self._evictions += 1
        return agent
