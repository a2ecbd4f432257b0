"""The store Protocols in memory: one process, one conversation at a time (`ruche test`).

They keep the promises of stores/ports.py that a turn relies on — a commit checks the session's
version and fencing token and claims its turn id, a field change supersedes the previous value,
a session key has at most one open session — so the turn gateway runs over them exactly as it runs
over DynamoDB. Nothing here is durable or shared between processes, and nothing is meant to be.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.bundle import NewVersion, PublishedBundle
from chalicelib.domain.errors import Conflict, InvalidInput, StaleSession
from chalicelib.domain.event import DeliveryFailure, EventEndpoint
from chalicelib.domain.ids import new_id, now_iso
from chalicelib.domain.interlocutor import (
    ChannelIdentity,
    FieldChange,
    FieldValue,
    InterlocutorData,
    ValueStatus,
)
from chalicelib.domain.session import Session, SessionKey, is_open
from chalicelib.domain.turn import CommittedTurn, TranscriptMessage, TurnCommit, TurnRecord
from chalicelib.stores.ports import Page, TurnStart, VersionInfo

DAY_S = 86_400


@dataclass
class MemoryTables:
    """Everything the in-memory stores hold, shared so that a commit can write all of it at once."""

    bundles: dict[tuple[str, str], list[PublishedBundle]] = field(default_factory=lambda: defaultdict(list))
    tenant_layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    identities: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (tenant, channel, user) -> itl
    values: dict[tuple[str, str], list[FieldValue]] = field(default_factory=lambda: defaultdict(list))
    sessions: dict[tuple[str, str], Session] = field(default_factory=dict)
    open_sessions: dict[str, str] = field(default_factory=dict)  # session key -> its open session id
    records: dict[tuple[str, str], list[TurnRecord]] = field(default_factory=lambda: defaultdict(list))
    transcripts: dict[tuple[str, str], list[tuple[int, TranscriptMessage]]] = field(
        default_factory=lambda: defaultdict(list))
    committed: dict[tuple[str, str], CommittedTurn] = field(default_factory=dict)  # (session key, turn id)


class MemoryBundleStore:
    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables

    def put(self, published: PublishedBundle) -> None:
        """Keep an already published version (embedded elsewhere) as the agent's latest."""
        self._tables.bundles[(published.tenant_id, published.agent_id)].append(published)

    def publish(self, tenant_id: str, agent_id: str, new: NewVersion, *, expected_version: int | None = None) -> int:
        latest = self.latest_version(tenant_id, agent_id)
        if expected_version is not None and expected_version != (latest or 0):
            raise Conflict("the agent changed since expected_version", latest_version=latest)
        version = (latest or 0) + 1
        self.put(PublishedBundle(tenant_id=tenant_id, agent_id=agent_id, version=version, bundle=new.bundle,
                                 published_at=now_iso(), embedding_model=new.embedding_model,
                                 vectors=new.vectors, source=new.source))
        return version

    def latest_version(self, tenant_id: str, agent_id: str) -> int | None:
        versions = self._tables.bundles.get((tenant_id, agent_id))
        return versions[-1].version if versions else None

    def load(self, tenant_id: str, agent_id: str, version: int | None = None) -> PublishedBundle | None:
        versions = self._tables.bundles.get((tenant_id, agent_id)) or []
        wanted = version or self.latest_version(tenant_id, agent_id)
        return next((published for published in versions if published.version == wanted), None)

    def versions(self, tenant_id: str, agent_id: str) -> list[VersionInfo]:
        return [VersionInfo(version=published.version, published_at=published.published_at,
                            rules=len(published.bundle.rules), scenarios=len(published.bundle.scenarios))
                for published in self._tables.bundles.get((tenant_id, agent_id)) or []]

    def list_agents(self, tenant_id: str) -> list[tuple[str, int]]:
        return sorted((agent_id, versions[-1].version) for (tenant, agent_id), versions in self._tables.bundles.items()
                      if tenant == tenant_id and versions)

    def delete(self, tenant_id: str, agent_id: str) -> bool:
        return self._tables.bundles.pop((tenant_id, agent_id), None) is not None


class MemoryConfigStore:
    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables

    def get_tenant_layer(self, tenant_id: str) -> dict[str, Any]:
        return dict(self._tables.tenant_layers.get(tenant_id, {}))

    def put_tenant_layer(self, tenant_id: str, layer: dict[str, Any]) -> None:
        self._tables.tenant_layers[tenant_id] = dict(layer)


class MemoryInterlocutorStore:
    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables

    def resolve(self, tenant_id: str, channel: str, user_id: str) -> str:
        return self._tables.identities.setdefault((tenant_id, channel, user_id), new_id("itl"))

    def load(self, tenant_id: str, interlocutor_id: str, now_s: float) -> InterlocutorData | None:
        identities = [ChannelIdentity(channel=channel, user_id=user)
                      for (tenant, channel, user), owner in self._tables.identities.items()
                      if tenant == tenant_id and owner == interlocutor_id]
        if not identities:
            return None
        live = {value.name: value for value in self._tables.values[(tenant_id, interlocutor_id)]
                if value.is_live(now_s)}
        return InterlocutorData(interlocutor_id=interlocutor_id, fields=live, identities=identities)

    def history(self, tenant_id: str, interlocutor_id: str) -> list[FieldValue]:
        return sorted(self._tables.values[(tenant_id, interlocutor_id)], key=lambda value: (value.name, value.version))

    def write(self, tenant_id: str, interlocutor_id: str, changes: list[FieldChange], now_s: float) -> None:
        """Each change becomes the field's new ACTIVE version; the one before is SUPERSEDED."""
        stored = self._tables.values[(tenant_id, interlocutor_id)]
        for change in changes:
            before = [value for value in stored if value.name == change.name]
            for index, value in enumerate(stored):
                if value.name == change.name and value.status is ValueStatus.ACTIVE:
                    stored[index] = value.model_copy(update={"status": ValueStatus.SUPERSEDED})
            stored.append(FieldValue(
                name=change.name, value=change.value, source=change.source, confidence=change.confidence,
                version=max((value.version for value in before), default=0) + 1, updated_at=now_iso(),
                expires_at=now_s + change.ttl_days * DAY_S if change.ttl_days is not None else None,
            ))

    def link(self, tenant_id: str, interlocutor_id: str, channel: str, user_id: str) -> None:
        self._tables.identities[(tenant_id, channel, user_id)] = interlocutor_id

    def erase(self, tenant_id: str, interlocutor_id: str) -> bool:
        owned = [identity for identity, owner in self._tables.identities.items()
                 if identity[0] == tenant_id and owner == interlocutor_id]
        for identity in owned:
            del self._tables.identities[identity]
        self._tables.values.pop((tenant_id, interlocutor_id), None)
        return bool(owned)


class MemorySessionStore:
    def __init__(self, tables: MemoryTables, interlocutors: MemoryInterlocutorStore) -> None:
        self._tables, self._interlocutors = tables, interlocutors

    def open(self, key: SessionKey, interlocutor_id: str, now_s: float, idle_timeout_s: float = 86_400.0) -> Session:
        current_id = self._tables.open_sessions.get(key.as_string())
        current = self.get(key.tenant_id, current_id) if current_id else None
        if current is not None and is_open(current, now_s, idle_timeout_s):
            return current
        session = Session(session_id=new_id("ses"), key=key, interlocutor_id=interlocutor_id,
                          created_at=now_iso(), updated_at=now_iso(), last_activity_s=now_s)
        self._tables.sessions[(key.tenant_id, session.session_id)] = session
        self._tables.open_sessions[key.as_string()] = session.session_id
        return session

    def get(self, tenant_id: str, session_id: str) -> Session | None:
        return self._tables.sessions.get((tenant_id, session_id))

    def save(self, session: Session, expected_version: int) -> None:
        self._check_version(session, expected_version)
        self._tables.sessions[(session.key.tenant_id, session.session_id)] = session

    def commit(self, commit: TurnCommit) -> None:
        """All of the turn or none of it, under the same conditions as the DynamoDB transaction."""
        session, tenant_id = commit.session, commit.session.key.tenant_id
        stored = self._check_version(session, commit.expected_version)
        if commit.fence is not None and stored is not None and stored.fence > commit.fence:
            raise StaleSession("a newer turn took over this session's lock", reason="lock_taken_over")
        claimed = (session.key.as_string(), commit.record.turn_id)
        if claimed in self._tables.committed:
            raise StaleSession("this turn was committed already", reason="already_answered")
        fenced = session.model_copy(update={"fence": max(session.fence, commit.fence or 0)})
        self._tables.sessions[(tenant_id, session.session_id)] = fenced
        self._tables.records[(tenant_id, session.session_id)].append(commit.record)
        self._tables.transcripts[(tenant_id, session.session_id)].extend(
            (commit.record.turn_number, message) for message in commit.transcript)
        self._tables.committed[claimed] = CommittedTurn(session_id=session.session_id,
                                                        turn_number=commit.record.turn_number)
        self._interlocutors.write(tenant_id, session.interlocutor_id, list(commit.field_changes), commit.now_s)

    def committed_turn(self, key: SessionKey, turn_id: str) -> CommittedTurn | None:
        return self._tables.committed.get((key.as_string(), turn_id))

    def reply_of(self, tenant_id: str, session_id: str, turn_number: int) -> str | None:
        replies = [message.text for number, message in self._tables.transcripts[(tenant_id, session_id)]
                   if number == turn_number and message.role == "agent"]
        return replies[-1] if replies else None

    def turns(self, tenant_id: str, session_id: str, limit: int = 50, cursor: str | None = None) -> Page:
        if limit < 1:
            raise InvalidInput.at("limit", "must be at least 1")
        start = int(cursor or 0)
        records = self._tables.records[(tenant_id, session_id)]
        page = records[start:start + limit]
        more = start + limit < len(records)
        return Page(items=list(page),
                    next_cursor=str(start + limit) if more else None)

    def messages(self, tenant_id: str, session_id: str, after: str | None = None) -> list[TranscriptMessage]:
        said = [message for _, message in self._tables.transcripts[(tenant_id, session_id)]]
        ids = [message.message_id for message in said]
        return said[ids.index(after) + 1:] if after in ids else said

    def _check_version(self, session: Session, expected_version: int) -> Session | None:
        stored = self.get(session.key.tenant_id, session.session_id)
        if (stored.version if stored is not None else 0) != expected_version:
            raise StaleSession("the session moved on since it was loaded")
        return stored


class MemoryTurnReads:
    def __init__(self, tables: MemoryTables, bundles: MemoryBundleStore, interlocutors: MemoryInterlocutorStore,
                 sessions: MemorySessionStore) -> None:
        self._tables, self._bundles = tables, bundles
        self._interlocutors, self._sessions = interlocutors, sessions

    def start(self, key: SessionKey, now_s: float | None = None) -> TurnStart:
        return TurnStart(
            latest_version=self._bundles.latest_version(key.tenant_id, key.agent_id),
            tenant_layer=dict(self._tables.tenant_layers.get(key.tenant_id, {})),
            interlocutor_id=self._tables.identities.get((key.tenant_id, key.channel, key.user_id)),
            session_id=self._tables.open_sessions.get(key.as_string()),
        )

    def session_and_data(self, tenant_id: str, session_id: str, interlocutor_id: str,
                         now_s: float) -> tuple[Session | None, InterlocutorData | None]:
        return self._sessions.get(tenant_id, session_id), self._interlocutors.load(tenant_id, interlocutor_id, now_s)


class MemorySessionLock:
    """One process's lock: a token per acquisition, refused while another holder's has not expired."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, float]] = {}
        self._tokens = itertools.count(1)

    def acquire(self, key: str, ttl_s: float) -> int | None:
        now = time.monotonic()
        held = self._held.get(key)
        if held is not None and held[1] > now:
            return None
        token = next(self._tokens)
        self._held[key] = (token, now + ttl_s)
        return token

    def release(self, key: str, token: int) -> bool:
        held = self._held.get(key)
        if held is None or held[0] != token:
            return False
        del self._held[key]
        return True


class MemoryEventEndpointStore:
    """No endpoints subscribe to a conversation run in memory: its events go nowhere."""

    def __init__(self) -> None:
        self._endpoints: dict[tuple[str, str], EventEndpoint] = {}

    def put(self, endpoint: EventEndpoint) -> None:
        self._endpoints[(endpoint.tenant_id, endpoint.endpoint_id)] = endpoint

    def get(self, tenant_id: str, endpoint_id: str, *, with_secret: bool = False) -> EventEndpoint | None:
        return self._endpoints.get((tenant_id, endpoint_id))

    def list(self, tenant_id: str) -> list[EventEndpoint]:
        return [endpoint for (tenant, _), endpoint in self._endpoints.items() if tenant == tenant_id]

    def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        return self._endpoints.pop((tenant_id, endpoint_id), None) is not None

    def record_failure(self, tenant_id: str, endpoint_id: str, failure: DeliveryFailure) -> None:
        return None

    def record_delivery(self, tenant_id: str, endpoint_id: str, at: str) -> None:
        return None
