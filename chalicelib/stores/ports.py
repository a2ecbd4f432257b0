"""Storage ports: what the rest of Ruche may ask of storage. Implementations hide boto3 and redis.

Table layout (one DynamoDB table, `pk`/`sk`, TTL attribute `expires_at`; DESIGN.md §4). Every
partition key of tenant data starts with the tenant id; the only global items are lookups that
hold no tenant data (`APIKEY#<hash>`, `BINDING#<id>`).

    pk                                   sk                          what
    T#<tenant>                           TENANT                      the tenant
    T#<tenant>                           KEY#<key_id>                an API key (hash only)
    T#<tenant>                           CONFIG                      the tenant config layer
    T#<tenant>                           AGENT#<agent>               the agent's head: latest version
    T#<tenant>                           SECRET#<name>               a tenant secret (KMS ciphertext only)
    T#<tenant>#A#<agent>                 V#<version:08d>#<part>      one published version, in parts
                                                                     (META commits it; dynamo_bundles.py)
    T#<tenant>#A#<agent>                 BINDING#<binding_id>        a channel binding
    T#<tenant>#S#<session>               SESSION                     session state (version-checked, fenced)
    T#<tenant>#S#<session>               TURN#<n:08d>                a turn record
    T#<tenant>#S#<session>               MSG#<n:08d>#<role>          the transcript
    T#<tenant>#SK#<session key hash>     ACTIVE                      the session key's open session
    T#<tenant>#AS#<agent>                SES#<started_at>#<session>  the agent's session index (session_index.py)
    T#<tenant>#I#<interlocutor>          PROFILE                     the interlocutor
    T#<tenant>#I#<interlocutor>          F#<field>#V#<version:06d>   a field value version
    T#<tenant>#I#<interlocutor>          IDENT#<channel>#<user>      an identity (for listing)
    T#<tenant>#ID#<channel>#<user>       IDENTITY                    identity -> interlocutor
    T#<tenant>#DEDUPE#<channel>          <provider message id>       inbound dedupe marker (TTL)
    T#<tenant>#INBOX#<session key hash>  M#<message id>              an accepted message awaiting its turn
    T#<tenant>#INBOX#<session key hash>  TURN#<turn id>              a committed turn's marker (inbox_items.py)
    T#<tenant>#RATE                      W#<minute>                  rate-limit counter, Redis down (TTL)
    T#<tenant>#USAGE#<shard>             D#<day>#A#<agent>           an agent's day: usage + insights
    T#<tenant>#USAGE#<shard>             M#<yyyy-mm>                 the tenant's month (quotas)
    APIKEY#<sha256>                      APIKEY                      key hash -> tenant, key id
    BINDING#<binding_id>                 BINDING                     binding -> tenant, agent
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.domain.bundle import NewVersion, PublishedBundle
from chalicelib.domain.channel import ChannelBinding
from chalicelib.domain.event import DeliveryFailure, EventEndpoint
from chalicelib.domain.interlocutor import FieldChange, FieldValue, InterlocutorData
from chalicelib.domain.session import Session, SessionKey
from chalicelib.domain.tenant import ApiKey, Tenant
from chalicelib.domain.turn import CommittedTurn, TranscriptMessage, TurnCommit
from chalicelib.domain.usage import MonthUsage


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    published_at: str
    rules: int
    scenarios: int


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_cursor: str | None = None


class TenantStore(Protocol):
    def create(self, tenant: Tenant) -> None: ...
    def get(self, tenant_id: str) -> Tenant | None: ...
    def delete(self, tenant_id: str) -> None:
        """Erase the tenant and every item of it (all partitions starting with T#<tenant>)."""
    def add_key(self, key: ApiKey) -> None: ...
    def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, or None if unknown or revoked."""
    def list_keys(self, tenant_id: str) -> list[ApiKey]: ...
    def revoke_key(self, tenant_id: str, key_id: str) -> bool: ...


class BundleStore(Protocol):
    def publish(self, tenant_id: str, agent_id: str, new: NewVersion, *, expected_version: int | None = None) -> int:
        """Write a new version atomically and return its number. `new.source`: the document as the
        publisher wrote it, kept with the version and loaded by the same one Query.

        Raises Conflict when expected_version is given and is not the latest version.
        Readers never see a half-written version: the head item flips last, conditionally.
        """
    def latest_version(self, tenant_id: str, agent_id: str) -> int | None: ...
    def load(self, tenant_id: str, agent_id: str, version: int | None = None) -> PublishedBundle | None:
        """One Query. None when the agent (or that version) does not exist or was deleted."""
    def versions(self, tenant_id: str, agent_id: str) -> list[VersionInfo]: ...
    def list_agents(self, tenant_id: str) -> list[tuple[str, int]]: ...
    def delete(self, tenant_id: str, agent_id: str) -> bool: ...


class ConfigStore(Protocol):
    def get_tenant_layer(self, tenant_id: str) -> dict[str, Any]: ...
    def put_tenant_layer(self, tenant_id: str, layer: dict[str, Any]) -> None: ...


class EventEndpointStore(Protocol):
    """A tenant's outbound event endpoints; the HMAC secret is returned only `with_secret`."""

    def put(self, endpoint: EventEndpoint) -> None: ...
    def get(self, tenant_id: str, endpoint_id: str, *, with_secret: bool = False) -> EventEndpoint | None: ...
    def list(self, tenant_id: str) -> list[EventEndpoint]: ...
    def delete(self, tenant_id: str, endpoint_id: str) -> bool: ...
    def record_failure(self, tenant_id: str, endpoint_id: str, failure: DeliveryFailure) -> None: ...
    def record_delivery(self, tenant_id: str, endpoint_id: str, at: str) -> None: ...


class BindingStore(Protocol):
    def put(self, binding: ChannelBinding) -> None: ...
    def get(self, binding_id: str) -> ChannelBinding | None:
        """By the global lookup: a webhook knows only the binding id."""
    def list(self, tenant_id: str, agent_id: str) -> list[ChannelBinding]: ...
    def delete(self, tenant_id: str, binding_id: str) -> bool: ...


class InterlocutorStore(Protocol):
    def resolve(self, tenant_id: str, channel: str, user_id: str) -> str:
        """The interlocutor id of this channel identity; created (exactly once) on first contact."""
    def load(self, tenant_id: str, interlocutor_id: str, now_s: float) -> InterlocutorData | None:
        """Live values only: superseded and expired ones are never served."""
    def history(self, tenant_id: str, interlocutor_id: str) -> list[FieldValue]: ...
    def write(self, tenant_id: str, interlocutor_id: str, changes: list[FieldChange], now_s: float) -> None:
        """Supersede and write in one transaction; a concurrent writer leaves exactly one ACTIVE."""
    def link(self, tenant_id: str, interlocutor_id: str, channel: str, user_id: str) -> None: ...
    def erase(self, tenant_id: str, interlocutor_id: str) -> bool:
        """Delete values, identities, and the transcripts and turn records of its sessions."""


@dataclass(frozen=True, slots=True)
class TurnStart:
    """What a turn needs before it knows its session: all read in one round trip."""

    latest_version: int | None  # None: no such agent
    tenant_layer: dict[str, Any]
    interlocutor_id: str | None  # None: first contact of this channel user
    session_id: str | None  # the session key's open-session pointer, if any
    month: MonthUsage = field(default_factory=MonthUsage)  # the tenant's turns and tokens this UTC month (quotas)


class TurnReads(Protocol):
    """The reads of a warm turn, batched: DESIGN.md §7 allows 3 DynamoDB round trips in all."""

    def start(self, key: SessionKey, now_s: float | None = None) -> TurnStart:
        """Agent head, tenant config layer, channel identity, session pointer and the month's
        usage: one round trip."""
    def session_and_data(self, tenant_id: str, session_id: str, interlocutor_id: str,
                         now_s: float) -> tuple[Session | None, InterlocutorData | None]:
        """The session and the interlocutor's live values: one round trip."""


class SessionStore(Protocol):
    def open(self, key: SessionKey, interlocutor_id: str, now_s: float, idle_timeout_s: float = 86_400.0) -> Session:
        """The key's open session, or a new one (idle or ended sessions are not reopened)."""
    def get(self, tenant_id: str, session_id: str) -> Session | None: ...
    def save(self, session: Session, expected_version: int) -> None:
        """State change outside a turn (handoff, resume, end). Raises StaleSession."""
    def commit(self, commit: TurnCommit) -> None:
        """One transaction. Raises StaleSession if the session moved on since it was loaded, if a turn
        holding a newer lock on it committed first (details.reason "lock_taken_over"), or if a
        message it answers left the inbox or its turn id was used (details.reason "already_answered")."""
    def committed_turn(self, key: SessionKey, turn_id: str) -> CommittedTurn | None:
        """The turn committed under this turn id, if any."""
    def reply_of(self, tenant_id: str, session_id: str, turn_number: int) -> str | None:
        """The agent's reply in the transcript of that turn; None when it had none (or was erased)."""
    def turns(self, tenant_id: str, session_id: str, limit: int = 50, cursor: str | None = None) -> Page: ...
    def messages(self, tenant_id: str, session_id: str, after: str | None = None) -> list[TranscriptMessage]: ...


class DedupeStore(Protocol):
    def first_sighting(self, tenant_id: str, channel: str, message_id: str, ttl_s: int) -> bool:
        """True exactly once per (channel, provider message id) within ttl_s."""


class SessionLock(Protocol):
    def acquire(self, key: str, ttl_s: float) -> int | None:
        """A fencing token (strictly increasing per key) or None if another owner holds it."""
    def release(self, key: str, token: int) -> bool: ...


class SecretStore(Protocol):
    def put(self, tenant_id: str, name: str, value: str) -> None: ...
    def get(self, tenant_id: str, name: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0  # seconds until the next window when refused; 0 when allowed


class RateLimiter(Protocol):
    def check(self, tenant_id: str, limit_per_minute: int, now_s: float, scope: str = "") -> RateDecision:
        """Count one request of the tenant in the current minute; refuse past limit_per_minute.

        `scope` names a narrower counter of the tenant (a binding, a visitor); "" is the tenant's own.
        """


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One row of an agent's session list (API: GET /v1/agents/{id}/sessions)."""

    session_id: str
    started_at: str
    last_turn_at: str
    turns: int
    fallbacks: int
    handoff: bool
    scenario_id: str | None
    channel: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """None means "either": fallback=True keeps sessions where a fallback fired at least once."""

    fallback: bool | None = None
    handoff: bool | None = None
    scenario: str | None = None


class SessionIndex(Protocol):
    """An agent's sessions, for the console; the turn's commit keeps it (stores/session_index.py)."""

    def list(self, tenant_id: str, agent_id: str, *, limit: int, cursor: str | None = None,
             where: SessionFilter | None = None) -> Page:
        """Up to `limit` SessionSummary newest first, matching `where`; next_cursor continues.

        Raises InvalidInput for a cursor this list did not issue."""
