"""The answers of the admin, agent, channel, event-endpoint, session and interlocutor routes (API.md).

Each answer is declared once, here, as a pydantic model built from the domain values the gateway
(chalicelib/runtime) and the stores return; a handler serialises it with `json_response`. The
field order of each model is the key order on the wire, and API.md fixes the shapes: a field that
may be null is always present, and the two fields an answer may leave out say so (InterlocutorView).
Secrets never reach a view: a binding shows its secrets' names, an event endpoint nothing of its key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from chalicelib.api.pagination import PageRequest, paginate
from chalicelib.config.resolver import ResolvedConfig
from chalicelib.domain.bundle import PublishedBundle
from chalicelib.domain.channel import ChannelBinding, ChannelName
from chalicelib.domain.event import DeliveryFailure, EventEndpoint, EventType
from chalicelib.domain.interlocutor import ChannelIdentity, FieldValue, ValueSource, ValueStatus
from chalicelib.domain.session import Session, SessionStatus
from chalicelib.domain.tenant import ApiKey
from chalicelib.domain.turn import TranscriptMessage, TurnRecord
from chalicelib.runtime.agents import AgentHead
from chalicelib.runtime.dead_letters import Replayed
from chalicelib.runtime.interlocutors import InterlocutorRead
from chalicelib.stores.ports import SessionSummary, VersionInfo

T = TypeVar("T")
V = TypeVar("V", bound=BaseModel)


def _paged(items: Sequence[T], page: PageRequest, view: Callable[[T], V]) -> tuple[list[V], str | None]:
    """One page of `items` as views, and the cursor of the next page (None on the last)."""
    found, cursor = paginate(items, page)
    return [view(item) for item in found], cursor


class _View(BaseModel):
    """An answer's model. Each route serialises one or two of them, so their validators and
    serialisers are built on first use, not all at cold start (DESIGN.md §7's import budget)."""

    model_config = ConfigDict(defer_build=True)


class _FromAttributes(_View):
    """A view read straight off a domain dataclass whose fields it repeats one for one."""

    model_config = ConfigDict(from_attributes=True)


# --- tenants and keys -----------------------------------------------------------------------------
class TenantCreated(_View):
    """201 of POST /v1/tenants: the first API key's secret is shown here only."""

    tenant_id: str
    api_key: str
    key_id: str


class KeyCreated(_View):
    """201 of POST /v1/keys: the secret is shown here only."""

    key_id: str
    api_key: str
    created_at: str


class KeyView(_View):
    key_id: str
    created_at: str
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> KeyView:
        return cls(key_id=key.key_id, created_at=key.created_at, revoked=key.revoked)


class KeyPage(_View):
    keys: list[KeyView]
    next_cursor: str | None

    @classmethod
    def of(cls, keys: Sequence[ApiKey], page: PageRequest) -> KeyPage:
        views, cursor = _paged(keys, page, KeyView.of)
        return cls(keys=views, next_cursor=cursor)


class ReplayAnswer(_FromAttributes):
    """POST /v1/dead-letters/replay."""

    replayed: int
    more: bool

    @classmethod
    def of(cls, replayed: Replayed) -> ReplayAnswer:
        return cls.model_validate(replayed)


# --- agents ---------------------------------------------------------------------------------------
class AgentSummary(_View):
    agent_id: str
    version: int


class AgentPage(_View):
    agents: list[AgentSummary]
    next_cursor: str | None

    @classmethod
    def of(cls, heads: Sequence[AgentHead], page: PageRequest) -> AgentPage:
        views, cursor = _paged(heads, page, AgentSummary.model_validate)
        return cls(agents=views, next_cursor=cursor)


class VersionView(_FromAttributes):
    version: int
    published_at: str
    rules: int
    scenarios: int


class VersionPage(_View):
    versions: list[VersionView]
    next_cursor: str | None

    @classmethod
    def of(cls, versions: Sequence[VersionInfo], page: PageRequest) -> VersionPage:
        views, cursor = _paged(versions, page, VersionView.model_validate)
        return cls(versions=views, next_cursor=cursor)


class AgentSource(_View):
    """GET /v1/agents/{agent_id}?format=source."""

    agent_id: str
    version: int
    format: Literal["yaml"] = "yaml"
    text: str

    @classmethod
    def of(cls, published: PublishedBundle, text: str) -> AgentSource:
        return cls(agent_id=published.agent_id, version=published.version, text=text)


class ResolvedConfigView(_View):
    """GET /v1/agents/{agent_id}/config/resolved: the config (its platform key variable hidden) and
    the layer each dotted key came from."""

    config: dict[str, Any]
    provenance: dict[str, str]

    @classmethod
    def of(cls, resolved: ResolvedConfig) -> ResolvedConfigView:
        # ResolvedConfig.to_json hides llm.api_key_env; that rule stays in one place.
        return cls.model_validate(resolved.to_json())


# --- channel bindings -----------------------------------------------------------------------------
class BindingCreated(_View):
    """201 of POST /v1/agents/{agent_id}/channels."""

    binding_id: str
    webhook_url: str


class BindingView(_View):
    """A binding as a GET shows it: the names of its secrets, never their values."""

    binding_id: str
    agent_id: str
    channel: ChannelName
    api_base_url: str | None
    config: dict[str, Any]
    secrets: list[str]
    created_at: str
    webhook_url: str

    @classmethod
    def of(cls, binding: ChannelBinding, webhook_url: str) -> BindingView:
        return cls(
            binding_id=binding.binding_id,
            agent_id=binding.agent_id,
            channel=binding.channel,
            api_base_url=binding.api_base_url,
            config=binding.config,
            secrets=sorted(binding.secrets),
            created_at=binding.created_at,
            webhook_url=webhook_url,
        )


class BindingPage(_View):
    channels: list[BindingView]
    next_cursor: str | None


# --- event endpoints ------------------------------------------------------------------------------
class EventEndpointView(_View):
    """An event endpoint without its secret, with the last failed delivery (null when none)."""

    endpoint_id: str
    url: str
    events: list[EventType]
    created_at: str
    updated_at: str
    last_failure: DeliveryFailure | None
    last_delivered_at: str | None

    @classmethod
    def of(cls, endpoint: EventEndpoint) -> EventEndpointView:
        return cls(
            endpoint_id=endpoint.endpoint_id,
            url=endpoint.url,
            events=endpoint.events,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
            last_failure=endpoint.last_failure,
            last_delivered_at=endpoint.last_delivered_at,
        )


class EventEndpointPage(_View):
    event_endpoints: list[EventEndpointView]
    next_cursor: str | None

    @classmethod
    def of(cls, endpoints: Sequence[EventEndpoint], page: PageRequest) -> EventEndpointPage:
        views, cursor = _paged(endpoints, page, EventEndpointView.of)
        return cls(event_endpoints=views, next_cursor=cursor)


# --- sessions -------------------------------------------------------------------------------------
class SessionSummaryView(_FromAttributes):
    session_id: str
    started_at: str
    last_turn_at: str
    turns: int
    fallbacks: int
    handoff: bool
    scenario_id: str | None
    channel: str
    user_id: str


class SessionPage(_View):
    """GET .../sessions, newest first."""

    sessions: list[SessionSummaryView]
    next_cursor: str | None

    @classmethod
    def of(cls, summaries: Sequence[SessionSummary], next_cursor: str | None) -> SessionPage:
        return cls(sessions=[SessionSummaryView.model_validate(summary) for summary in summaries],
                   next_cursor=next_cursor)


class TurnPage(_View):
    """GET .../sessions/{session_id}/turns: the turn records as stored (their text PII-masked)."""

    turns: list[TurnRecord]
    next_cursor: str | None


class MessageView(_FromAttributes):
    message_id: str
    role: str
    text: str
    created_at: str


class MessagePage(_View):
    """GET .../sessions/{session_id}/messages, oldest first."""

    next_cursor: str | None  # first: the order this answer has always had on the wire
    messages: list[MessageView]

    @classmethod
    def of(cls, messages: Sequence[TranscriptMessage], next_cursor: str | None) -> MessagePage:
        return cls(next_cursor=next_cursor, messages=[MessageView.model_validate(message) for message in messages])


class SessionStatusView(_View):
    """POST .../sessions/{session_id}/resume and .../end."""

    session_id: str
    status: SessionStatus

    @classmethod
    def of(cls, session: Session) -> SessionStatusView:
        return cls(session_id=session.session_id, status=session.status)


# --- interlocutors --------------------------------------------------------------------------------
class FieldValueView(_View):
    value: Any
    source: ValueSource
    status: ValueStatus
    updated_at: str


class FieldVersionView(_View):
    """One past or present version of a field's value, in the interlocutor's history."""

    name: str
    version: int
    value: Any
    source: ValueSource
    status: ValueStatus
    updated_at: str


class InterlocutorView(_View):
    """GET and PATCH .../interlocutors/{interlocutor_id}: the agent's persistent fields, by name.

    `history` and its `next_cursor` are in the answer only when ?history= asked for them.
    """

    interlocutor_id: str
    fields: dict[str, FieldValueView]
    identities: list[ChannelIdentity]
    history: list[FieldVersionView] | None = None
    next_cursor: str | None = None

    @classmethod
    def of(cls, read: InterlocutorRead, page: PageRequest | None = None) -> InterlocutorView:
        """The view; `page` pages the history, the one list of this view that grows without bound."""
        view = cls(
            interlocutor_id=read.interlocutor_id,
            fields={name: _value_view(value) for name, value in read.fields.items()},
            identities=read.identities,
        )
        if read.history is not None:
            history, cursor = read.history, None
            if page is not None:
                history, cursor = paginate(read.history, page)
            view.history = [_version_view(value) for value in history]
            view.next_cursor = cursor
        return view

    @model_serializer(mode="wrap")
    def _without_unasked_history(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        body: dict[str, Any] = handler(self)
        if self.history is None:
            body.pop("history", None)
            body.pop("next_cursor", None)
        return body


def _value_view(value: FieldValue) -> FieldValueView:
    return FieldValueView(value=value.value, source=value.source, status=value.status, updated_at=value.updated_at)


def _version_view(value: FieldValue) -> FieldVersionView:
    return FieldVersionView(name=value.name, version=value.version, value=value.value, source=value.source,
                            status=value.status, updated_at=value.updated_at)
