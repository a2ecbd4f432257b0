"""Small builders for FOCAL tests: a_rule(...), a_bundle(...), a_published(...), a_loaded(...), a_context(...).

Shared by every FOCAL test module; keep it additive (new keyword arguments get defaults).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.domain.bundle import AgentBundle, AgentInfo, PublishedBundle
from chalicelib.domain.config import Config
from chalicelib.domain.interlocutor import (
    FieldDefinition,
    FieldType,
    FieldValue,
    InterlocutorData,
    ValueSource,
)
from chalicelib.domain.rule import Rule, Scope
from chalicelib.domain.scenario import Scenario, Step, Transition
from chalicelib.domain.session import PendingConfirmation, ScenarioState, Session, SessionKey
from chalicelib.domain.template import Template, TemplateMode
from chalicelib.domain.tool import Tool
from chalicelib.focal.agent import LoadedAgent, load_agent
from chalicelib.focal.types import TurnContext, TurnInput
from chalicelib.providers.embeddings import OfflineEmbedder
from chalicelib.providers.llm import EmbeddingProvider

if TYPE_CHECKING:
    from chalicelib.providers.llm import Vectors

TENANT, AGENT = "t1", "a1"


def a_rule(rule_id: str = "r1", condition: str = "the user asks for a refund",
           action: str = "explain the refund policy", **fields: Any) -> Rule:
    """A rule; `scenario=`/`step=` imply the matching scope unless `scope=` is given."""
    if "scope" not in fields:
        if fields.get("step"):
            fields["scope"] = Scope.STEP
        elif fields.get("scenario"):
            fields["scope"] = Scope.SCENARIO
    return Rule(id=rule_id, condition=condition, action=action, **fields)


def a_transition(to: str, condition: str | None = None, expression: str | None = None) -> Transition:
    return Transition(to=to, condition=condition, expression=expression)


def a_step(step_id: str = "s1", *, transitions: Sequence[Transition] = (), required: Sequence[str] = (),
           **fields: Any) -> Step:
    return Step(id=step_id, transitions=list(transitions), required_fields=list(required), **fields)


def a_scenario(scenario_id: str = "returns", condition: str = "the user wants to return an item",
               steps: Sequence[Step] | None = None, **fields: Any) -> Scenario:
    steps = list(steps) if steps is not None else [a_step("s1")]
    fields.setdefault("entry_step", steps[0].id)
    return Scenario(id=scenario_id, condition=condition, steps=steps, **fields)


def a_field(name: str = "email", type: FieldType | str = FieldType.STRING, **fields: Any) -> FieldDefinition:
    return FieldDefinition(name=name, type=FieldType(type), **fields)


def a_template(template_id: str = "tpl1", text: str = "Hello", mode: TemplateMode = TemplateMode.SUGGEST,
               **fields: Any) -> Template:
    return Template(id=template_id, text=text, mode=mode, **fields)


def a_tool(tool_id: str = "tool1", url: str = "https://tools.example.com/x", **fields: Any) -> Tool:
    return Tool(id=tool_id, url=url, **fields)


def a_bundle(*, rules: Sequence[Rule] = (), scenarios: Sequence[Scenario] = (),
             fields: Sequence[FieldDefinition] = (), templates: Sequence[Template] = (),
             tools: Sequence[Tool] = (), name: str = "Test agent") -> AgentBundle:
    return AgentBundle(agent=AgentInfo(name=name), rules=list(rules), scenarios=list(scenarios),
                       fields=list(fields), templates=list(templates), tools=list(tools))


class RecordingEmbedder:
    """The real OfflineEmbedder behind the EmbeddingProvider port, recording what it was asked to embed.

    Lets tests see that the hot path never re-embeds what publish computed.
    """

    def __init__(self, dimensions: int = 128) -> None:
        self._inner = OfflineEmbedder(dimensions)
        self.model = self._inner.model
        self.dimensions = dimensions
        self.calls: list[tuple[str, ...]] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(tuple(texts))
        return self._inner.embed(texts)


def an_embedder(dimensions: int = 128) -> RecordingEmbedder:
    return RecordingEmbedder(dimensions)


def a_published(bundle: AgentBundle | None = None, *, embedder: EmbeddingProvider | None = None,
                version: int = 1, tenant_id: str = TENANT, agent_id: str = AGENT,
                vectors: dict[str, list[float]] | None = None) -> PublishedBundle:
    """A published version; with `embedder`, vectors are computed as the publish path does."""
    bundle = bundle if bundle is not None else a_bundle()
    if vectors is None and embedder is not None:
        from chalicelib.focal.index import embed_bundle

        vectors = embed_bundle(bundle, embedder)
    return PublishedBundle(tenant_id=tenant_id, agent_id=agent_id, version=version, bundle=bundle,
                           published_at="2026-01-01T00:00:00Z",
                           embedding_model=embedder.model if embedder is not None else "",
                           vectors=vectors or {})


def a_loaded(bundle: AgentBundle | PublishedBundle | None = None) -> LoadedAgent:
    """The loaded agent of a bundle (published as version 1) or of a published version."""
    published = bundle if isinstance(bundle, PublishedBundle) else a_published(bundle)
    return load_agent(published)


def an_interlocutor(values: Mapping[str, Any] | None = None, interlocutor_id: str = "i1") -> InterlocutorData:
    fields = {
        name: FieldValue(name=name, value=value, version=1, source=ValueSource.USER,
                         updated_at="2026-01-01T00:00:00Z")
        for name, value in (values or {}).items()
    }
    return InterlocutorData(interlocutor_id=interlocutor_id, fields=fields)


def a_session(*, scenario: str | None = None, step: str | None = None,
              variables: Mapping[str, Any] | None = None, pending_tool: str | None = None,
              turn_count: int = 0, **fields: Any) -> Session:
    state = ScenarioState(scenario_id=scenario, step_id=step or "s1") if scenario else None
    pending = PendingConfirmation(tool_id=pending_tool, inputs={}) if pending_tool else None
    return Session(session_id="ses1", key=SessionKey(tenant_id=TENANT, agent_id=AGENT, channel="web",
                                                     user_id="u1"),
                   interlocutor_id="i1", scenario=state, variables=dict(variables or {}),
                   pending_confirmation=pending, turn_count=turn_count, **fields)


def a_context(message: str = "hello", *, published: PublishedBundle | None = None,
              session: Session | None = None, interlocutor: InterlocutorData | None = None,
              config: Config | None = None, history: Sequence[tuple[str, str]] = (),
              channel: str = "web", turn_number: int = 1, now_s: float = 1_800_000_000.0) -> TurnContext:
    published = published if published is not None else a_published()
    return TurnContext(tenant_id=published.tenant_id, agent_id=published.agent_id, agent=load_agent(published),
                       config=config or Config(), session=session or a_session(),
                       interlocutor=interlocutor or an_interlocutor(),
                       turn=TurnInput(message=message, channel=channel, turn_number=turn_number, now_s=now_s),
                       history=tuple(history))
