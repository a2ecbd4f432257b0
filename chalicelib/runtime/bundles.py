"""Published bundles, cached per container by version (DESIGN.md §3 phase 1).

Each turn asks the store for the agent's latest version (one GetItem) and reuses the bundle it
already holds for that version; only a new version costs the one Query that loads it. A turn keeps
the PublishedBundle object it started with, so a publish during the turn never changes it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from chalicelib.domain.errors import NotFound
from chalicelib.stores.ports import BundleStore, PublishedBundle

_MAX_CACHED = 64


class BundleCache:
    def __init__(self, store: BundleStore, max_entries: int = _MAX_CACHED) -> None:
        self._store = store
        self._max = max_entries
        self._cache: OrderedDict[tuple[str, str, int], PublishedBundle] = OrderedDict()
        self._lock = threading.Lock()

    def latest(self, tenant_id: str, agent_id: str) -> PublishedBundle:
        """The agent's latest published version. Raises NotFound for an unknown or deleted agent."""
        version = self._store.latest_version(tenant_id, agent_id)
        if version is None:
            raise NotFound(f"agent {agent_id!r} not found")
        return self.version(tenant_id, agent_id, version)

    def version(self, tenant_id: str, agent_id: str, version: int) -> PublishedBundle:
        key = (tenant_id, agent_id, version)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        published = self._store.load(tenant_id, agent_id, version)
        if published is None:
            raise NotFound(f"agent {agent_id!r} has no version {version}")
        with self._lock:
            self._cache[key] = published
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return published
