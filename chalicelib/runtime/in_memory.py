"""Services over the in-memory stores: the production turn path with no AWS, for `ruche test`.

The turn gateway (runtime/gateway.py) runs over them unchanged — lock, phase 1's reads, FOCAL,
the commit with its conditions — so a conversation test exercises what the server runs. The
providers and the tool runner are the caller's (an offline model, stubbed tools); the LLM may be
swapped for one turn (a scripted exchange). No metrics lines: a terminal is not CloudWatch.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from chalicelib.domain.bundle import PublishedBundle
from chalicelib.runtime.services import Services, Settings
from chalicelib.stores.memory import (
    MemoryBundleStore,
    MemoryConfigStore,
    MemoryEventEndpointStore,
    MemoryInterlocutorStore,
    MemorySessionLock,
    MemorySessionStore,
    MemoryTables,
    MemoryTurnReads,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_sqs import SQSClient

    from chalicelib.domain.config import Config
    from chalicelib.domain.turn import TurnRecord
    from chalicelib.focal.types import ToolRunner
    from chalicelib.providers.llm import EmbeddingProvider, LlmProvider


@dataclasses.dataclass(frozen=True, slots=True)
class LocalProviders:
    """What answers an in-memory turn instead of the network: the model, the embedder, the tools."""

    llm: LlmProvider
    embedder: EmbeddingProvider
    tools: ToolRunner


class InMemoryServices(Services):
    """This process's stores in memory, with the given providers for every tenant."""

    def __init__(self, providers: LocalProviders, platform_layer: Mapping[str, Any] | None = None) -> None:
        settings = dataclasses.replace(Settings.from_env({}), platform_layer=dict(platform_layer or {}))
        super().__init__(settings, {})
        self.tables = MemoryTables()
        self._providers, self._llm = providers, providers.llm

    def publish(self, published: PublishedBundle) -> None:
        """Make a version (embedded by the caller, as publish does) its agent's latest."""
        self.bundles.put(published)

    @contextmanager
    def answering_with(self, llm: LlmProvider | None) -> Iterator[None]:
        """Turns inside the block call `llm` (e.g. a scripted exchange) instead of the usual model."""
        self._llm = llm or self._providers.llm
        try:
            yield
        finally:
            self._llm = self._providers.llm

    # --- stores ------------------------------------------------------------------------------
    @functools.cached_property
    def bundles(self) -> MemoryBundleStore:
        return MemoryBundleStore(self.tables)

    @functools.cached_property
    def config_store(self) -> MemoryConfigStore:
        return MemoryConfigStore(self.tables)

    @functools.cached_property
    def interlocutors(self) -> MemoryInterlocutorStore:
        return MemoryInterlocutorStore(self.tables)

    @functools.cached_property
    def sessions(self) -> MemorySessionStore:
        return MemorySessionStore(self.tables, self.interlocutors)

    @functools.cached_property
    def turn_reads(self) -> MemoryTurnReads:
        return MemoryTurnReads(self.tables, self.bundles, self.interlocutors, self.sessions)

    @functools.cached_property
    def session_lock(self) -> MemorySessionLock:
        return MemorySessionLock()

    @functools.cached_property
    def event_endpoints(self) -> MemoryEventEndpointStore:
        return MemoryEventEndpointStore()

    # Nothing in memory may reach AWS: a path that tries is a bug to hear about, not a timeout.
    @functools.cached_property
    def dynamodb(self) -> DynamoDBClient:
        _no_aws("DynamoDB")

    @functools.cached_property
    def sqs(self) -> SQSClient:
        _no_aws("SQS")

    @functools.cached_property
    def kms(self) -> KMSClient:
        _no_aws("KMS")

    # --- providers ---------------------------------------------------------------------------
    def llm_for(self, tenant_id: str, config: Config) -> LlmProvider:
        return self._llm

    def embedder_for(self, tenant_id: str, config: Config) -> EmbeddingProvider:
        return self._providers.embedder

    def tools_for(self, config: Config) -> ToolRunner:
        return self._providers.tools

    def publish_turn_metrics(self, record: TurnRecord, latency_ms: float) -> None:
        return None


def _no_aws(service: str) -> NoReturn:
    raise RuntimeError(f"in-memory services reach no {service}: this path needs the local stack")
