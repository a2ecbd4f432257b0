"""The container's collaborators, built once from the environment: stores, clients, providers.

`services()` is cached per container (a warm Lambda reuses it); `reset_services()` drops it, for
tests that change the environment. boto3 clients and the Redis client are created lazily, once,
on first use: a route that never touches KMS never builds a KMS client. boto3 honours
AWS_ENDPOINT_URL itself (moto_server / LocalStack locally).

Environment: RUCHE_TABLE, RUCHE_IDEMPOTENCY_TABLE, RUCHE_TURN_QUEUE_URL, RUCHE_TURN_DLQ_URL, RUCHE_SECRETS_KEY_ID,
REDIS_URL (optional: without it locks and rate limits live in DynamoDB), RUCHE_ADMIN_KEY,
RUCHE_MAX_BODY_BYTES, RUCHE_LLM_CASSETTE, and the platform config overrides of
config.resolver.platform_layer_from_env.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from chalicelib.config.key_policy import Calling, may_use_platform_key
from chalicelib.config.resolver import ConfigResolver, platform_layer_from_env, resolve
from chalicelib.domain.config import Config, Layer
from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.factory import build_embedder, build_llm
from chalicelib.providers.llm import EmbeddingProvider, LlmProvider
from chalicelib.runtime.loaded_agents import LoadedAgents
from chalicelib.stores.dynamo_bindings import DynamoBindingStore
from chalicelib.stores.dynamo_bundles import DynamoBundleStore
from chalicelib.stores.dynamo_config import DynamoConfigStore
from chalicelib.stores.dynamo_dedupe import DynamoDedupeStore
from chalicelib.stores.dynamo_event_endpoints import DynamoEventEndpointStore
from chalicelib.stores.dynamo_interlocutors import DynamoInterlocutorStore
from chalicelib.stores.dynamo_sessions import DynamoSessionStore
from chalicelib.stores.dynamo_tenants import DynamoTenantStore
from chalicelib.stores.dynamo_turn_reads import DynamoTurnReads
from chalicelib.stores.dynamo_usage import DynamoUsageStore
from chalicelib.stores.idempotency_index import DynamoIdempotencyIndex
from chalicelib.stores.kms_secrets import KmsCipher, KmsSecretStore
from chalicelib.stores.ports import (
    BindingStore,
    BundleStore,
    ConfigStore,
    DedupeStore,
    EventEndpointStore,
    InterlocutorStore,
    RateLimiter,
    SessionIndex,
    SessionLock,
    SessionStore,
    TenantStore,
    TurnReads,
)
from chalicelib.stores.session_index import DynamoSessionIndex

if TYPE_CHECKING:
    import redis
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_sqs import SQSClient

    from chalicelib.domain.turn import TurnRecord
    from chalicelib.focal.types import ToolRunner
    from chalicelib.stores.inbox import SessionInbox

# RUCHE_MAX_BODY_BYTES when unset: under Lambda's 6 MB payload limit, so a 413 is ours, not a gateway error.
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """The environment, read once."""

    table: str
    idempotency_table: str
    turn_queue_url: str
    secrets_key_id: str
    redis_url: str | None
    admin_key: str | None
    max_body_bytes: int
    cassette: str | None
    platform_layer: dict[str, Any] = field(default_factory=dict)
    turn_dlq_url: str = ""  # RUCHE_TURN_DLQ_URL (runtime/dead_letters.py)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        raw_limit = environ.get("RUCHE_MAX_BODY_BYTES", "")
        return cls(
            table=environ.get("RUCHE_TABLE", "ruche-dev-main"),
            idempotency_table=environ.get("RUCHE_IDEMPOTENCY_TABLE", "ruche-dev-idempotency"),
            turn_queue_url=environ.get("RUCHE_TURN_QUEUE_URL", ""),
            secrets_key_id=environ.get("RUCHE_SECRETS_KEY_ID", ""),
            redis_url=environ.get("REDIS_URL") or None,
            admin_key=environ.get("RUCHE_ADMIN_KEY") or None,
            max_body_bytes=int(raw_limit) if raw_limit.isdigit() else DEFAULT_MAX_BODY_BYTES,
            cassette=environ.get("RUCHE_LLM_CASSETTE") or None,
            platform_layer=platform_layer_from_env(environ),
            turn_dlq_url=environ.get("RUCHE_TURN_DLQ_URL", ""),
        )


class Services:
    """Stores, clients and providers of this container. Each is built on first use, then reused."""

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self._environ = dict(environ)  # only the platform may name an env var (llm.api_key_env)
        self.resolver = ConfigResolver(settings.platform_layer)
        self._embedders: dict[tuple[str, str, int], EmbeddingProvider] = {}
        self._lock = threading.Lock()

    @functools.cached_property
    def platform_config(self) -> Config:
        """Code defaults + the platform overrides of the environment (network.allow_private, llm.*)."""
        return resolve([(Layer.PLATFORM, self.settings.platform_layer)]).config

    # --- AWS and Redis clients ---------------------------------------------------------------
    @functools.cached_property
    def dynamodb(self) -> DynamoDBClient:
        return boto3.client("dynamodb")

    @functools.cached_property
    def kms(self) -> KMSClient:
        return boto3.client("kms")

    @functools.cached_property
    def sqs(self) -> SQSClient:
        return boto3.client("sqs")

    @functools.cached_property
    def redis(self) -> redis.Redis | None:
        """The Redis client, or None without REDIS_URL. Connecting happens on the first command."""
        if self.settings.redis_url is None:
            return None
        import redis  # noqa: PLC0415 - redis-py loads its asyncio client too: on first use, not at cold start

        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    # --- stores ------------------------------------------------------------------------------
    @functools.cached_property
    def cipher(self) -> KmsCipher:
        return KmsCipher(self.kms, self.settings.secrets_key_id)

    @functools.cached_property
    def tenants(self) -> TenantStore:
        return DynamoTenantStore(self.dynamodb, self.settings.table)

    @functools.cached_property
    def bundles(self) -> BundleStore:
        return DynamoBundleStore(self.dynamodb, self.settings.table)

    @functools.cached_property
    def turn_reads(self) -> TurnReads:
        return DynamoTurnReads(self.dynamodb, self.settings.table)

    @functools.cached_property
    def usage(self) -> DynamoUsageStore:
        """Usage and insight counters, written by the turn commit, read by day range."""
        return DynamoUsageStore(self.dynamodb, self.settings.table)

    @functools.cached_property
    def agents(self) -> LoadedAgents:
        """The agent versions this container has loaded, with all they derive (runtime/loaded_agents.py)."""
        return LoadedAgents(self.bundles)

    @functools.cached_property
    def config_store(self) -> ConfigStore:
        return DynamoConfigStore(self.dynamodb, self.settings.table)

    @functools.cached_property
    def bindings(self) -> BindingStore:
        return DynamoBindingStore(self.dynamodb, self.settings.table, self.cipher)

    @functools.cached_property
    def event_endpoints(self) -> EventEndpointStore:
        return DynamoEventEndpointStore(self.dynamodb, self.settings.table, self.cipher)

    @functools.cached_property
    def secrets(self) -> KmsSecretStore:
        return KmsSecretStore(self.dynamodb, self.settings.table, self.cipher)

    @functools.cached_property
    def interlocutors(self) -> InterlocutorStore:
        return DynamoInterlocutorStore(self.dynamodb, self.settings.table)

    @functools.cached_property
    def idempotency_index(self) -> DynamoIdempotencyIndex:
        """Which Idempotency-Key records answered which interlocutor (erasure reaches them)."""
        return DynamoIdempotencyIndex(self.dynamodb, self.settings.table, self.settings.idempotency_table)

    @functools.cached_property
    def sessions(self) -> SessionStore:
        return DynamoSessionStore(self.dynamodb, self.settings.table)

    @functools.cached_property
    def session_index(self) -> SessionIndex:
        """An agent's sessions, newest first (the console's list)."""
        return DynamoSessionIndex(self.dynamodb, self.settings.table)

    @functools.cached_property
    def inbox(self) -> SessionInbox:
        """Accepted messages waiting for their turn: DynamoDB, never Redis alone (stores/inbox.py)."""
        from chalicelib.stores.inbox import SessionInbox  # noqa: PLC0415 - loaded by ingest and the worker only

        return SessionInbox(self.dynamodb, self.settings.table)

    @functools.cached_property
    def dedupe(self) -> DedupeStore:
        return DynamoDedupeStore(self.dynamodb, self.settings.table)

    @functools.cached_property
    def session_lock(self) -> SessionLock:
        from chalicelib.stores.locks import (  # noqa: PLC0415 - imports redis (see `redis`)
            DynamoSessionLock,
            FallbackSessionLock,
            RedisSessionLock,
        )

        dynamo_lock = DynamoSessionLock(self.dynamodb, self.settings.table)
        if self.redis is None:
            return dynamo_lock
        return FallbackSessionLock(RedisSessionLock(self.redis), dynamo_lock)

    @functools.cached_property
    def rate_limiter(self) -> RateLimiter:
        from chalicelib.stores.rate_limit import (  # noqa: PLC0415 - imports redis (see `redis`)
            DynamoRateLimiter,
            FallbackRateLimiter,
            RedisRateLimiter,
        )

        dynamo_limiter = DynamoRateLimiter(self.dynamodb, self.settings.table)
        if self.redis is None:
            return dynamo_limiter
        return FallbackRateLimiter(RedisRateLimiter(self.redis), dynamo_limiter)

    # --- providers ---------------------------------------------------------------------------
    def api_key_for(self, tenant_id: str, config: Config, calling: Calling = "llm") -> str | None:
        """The key of a `calling` call: the tenant secret config names, else the platform's env var
        when the call goes to the platform's own provider and base URL (config/key_policy.py), else None.

        Raises InvalidInput when llm.api_key_secret names a secret the tenant does not have.
        """
        if config.llm.api_key_secret:
            value = self.secrets.get(tenant_id, config.llm.api_key_secret)
            if value is None:
                raise InvalidInput.at("llm.api_key_secret", "names no secret of this tenant")
            return value
        platform = self.platform_config
        # Only the platform layer names an env var (validated on write); read it from there, never
        # from a merged config, and only for a call that goes where the platform's calls go.
        if platform.llm.api_key_env and may_use_platform_key(config, platform, calling):
            return self._environ.get(platform.llm.api_key_env)
        return None

    def llm_for(self, tenant_id: str, config: Config) -> LlmProvider:
        """The LLM provider of a resolved config, with the tenant's key, capped per tenant."""
        return build_llm(
            config.llm,
            self.api_key_for(tenant_id, config),
            allow_private=config.network.allow_private,
            cassette=self.settings.cassette,
            tenant_id=tenant_id,
        )

    def tools_for(self, config: Config) -> ToolRunner:
        """The turn's tool runner: HTTP calls to the tools' endpoints, through the network guard."""
        from chalicelib.focal.tools import http_tool_runner  # noqa: PLC0415 - with the pipeline, on first turn
        from chalicelib.providers.tools_http import HttpToolClient  # noqa: PLC0415

        return http_tool_runner(HttpToolClient(allow_private=config.network.allow_private))

    def publish_turn_metrics(self, record: TurnRecord, latency_ms: float) -> None:
        """A committed turn's CloudWatch metrics (EMF lines on stdout, runtime/metrics.py)."""
        from chalicelib.runtime.metrics import publish_turn  # noqa: PLC0415 - loaded by turns only

        publish_turn(record, latency_ms)

    def embedder_for(self, tenant_id: str, config: Config) -> EmbeddingProvider:
        """The embedder of a resolved config. Offline embedders are shared by the whole container."""
        embeddings = config.embeddings
        if embeddings.provider == "offline":
            cache_key = (embeddings.provider, embeddings.model or "", embeddings.dimensions)
            with self._lock:
                if cache_key not in self._embedders:
                    self._embedders[cache_key] = build_embedder(embeddings)
                return self._embedders[cache_key]
        return build_embedder(
            embeddings,
            api_key=self.api_key_for(tenant_id, config, "embeddings"),
            base_url=config.llm.base_url,
            region=config.llm.region,
            allow_private=config.network.allow_private,
        )


@functools.cache
def services() -> Services:
    """This container's Services, built from os.environ on first call."""
    return Services(Settings.from_env(os.environ), os.environ)


def reset_services() -> None:
    """Forget the container's Services (tests that change the environment call this)."""
    services.cache_clear()
