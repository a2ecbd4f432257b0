"""Run an agent bundle in this process: the server's turn (runtime/execute.py) minus DynamoDB.

The Session, the InterlocutorData and the transcript live in memory between turns; FOCAL
(focal.pipeline.run_focal), config resolution (config.resolver) and the session and turn-record
building (runtime.records) are the very code the server runs. Tools are answered by a
`StubbedTools` mapping from the test file (an offline stand-in for the tool endpoints), and a
turn's LLM calls may be scripted (`ScriptedLlm`, an inline cassette).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.config.resolver import ConfigResolver
from chalicelib.domain.bundle import AgentBundle, PublishedBundle
from chalicelib.domain.config import Config
from chalicelib.domain.ids import new_id, now_iso
from chalicelib.domain.interlocutor import FieldChange, FieldValue, InterlocutorData
from chalicelib.domain.session import Session, SessionKey, SessionStatus
from chalicelib.domain.turn import Outcome, TranscriptMessage, TurnRecord
from chalicelib.focal.agent import load_agent
from chalicelib.focal.index import embed_bundle
from chalicelib.focal.pipeline import run_focal
from chalicelib.focal.privacy import mask_text
from chalicelib.focal.types import FocalDeps, ToolFailed, ToolRequest, ToolRunner
from chalicelib.providers.llm import EmbeddingProvider, LlmProvider, LlmRequest, LlmResponse, Task
from chalicelib.providers.replay import Exchange, ReplayLlm
from chalicelib.runtime.context import turn_context
from chalicelib.runtime.records import next_session, outcome_of, turn_record

LOCAL_TENANT = "local"
TOOL_BUDGET_S = 15.0  # as runtime/execute.py


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What one turn did, as the test runner checks it (in-process or through the API)."""

    reply: str | None  # None: the session is handed off and the agent stays silent
    outcome: Outcome
    record: TurnRecord | None
    values: Mapping[str, Any]  # every stored field value after the turn (persistent + session)
    problems: tuple[str, ...] = ()  # the turn itself went wrong (a model script not played out)


class StubbedTools:
    """A ToolRunner that answers from a test file's `tools:` mapping instead of calling the endpoint."""

    def __init__(self, answers: Mapping[str, Mapping[str, Any]]) -> None:
        self._answers = answers
        self.calls: list[ToolRequest] = []

    def __call__(self, request: ToolRequest) -> Mapping[str, Any]:
        self.calls.append(request)
        answer = self._answers.get(request.tool.id)
        if answer is None:
            raise ToolFailed(f"the test file stubs no answer for tool {request.tool.id!r}")
        return dict(answer)


class ScriptedLlm:
    """Serves scripted calls per task (in order) and hands every other call to `base`.

    `problems` says when the turn made more calls of a scripted task than scripted, and
    `unused()` which scripted calls were never asked for: both fail the test.
    """

    def __init__(self, base: LlmProvider, script: Sequence[Exchange]) -> None:
        self.name = base.name
        self._base = base
        by_task: dict[Task, list[Exchange]] = defaultdict(list)
        for exchange in script:
            by_task[exchange.task or "generation"].append(exchange)
        self._replays = {task: ReplayLlm(items, source="the turn's model script") for task, items in by_task.items()}
        self.problems: list[str] = []

    def complete(self, request: LlmRequest) -> LlmResponse:
        replay = self._replays.get(request.task)
        if replay is None:
            return self._base.complete(request)
        if replay.remaining == 0:
            self.problems.append(f"the turn made more {request.task} calls than the model script holds")
        return replay.complete(request)

    def unused(self) -> list[str]:
        return [
            f"{replay.remaining} scripted {task} call(s) were never made"
            for task, replay in self._replays.items()
            if replay.remaining
        ]


@dataclass
class InProcessAgent:
    """One conversation (session) with a bundle, in memory."""

    bundle: AgentBundle
    agent_id: str
    llm: LlmProvider
    embedder: EmbeddingProvider
    tools: ToolRunner
    platform_layer: Mapping[str, Any] = field(default_factory=dict)
    channel: str = "api"
    user_id: str = "ruche-test-user"

    def __post_init__(self) -> None:
        digest = hashlib.blake2b(
            json.dumps(self.bundle.to_document(), sort_keys=True, default=str).encode(), digest_size=8
        ).hexdigest()
        # The tenant carries the content digest: the resolver caches configs by (tenant, agent, version).
        self.published = PublishedBundle(
            tenant_id=f"{LOCAL_TENANT}-{digest}",
            agent_id=self.agent_id,
            version=1,
            bundle=self.bundle,
            published_at=now_iso(),
            embedding_model=self.embedder.model,
            vectors=embed_bundle(self.bundle, self.embedder),
        )  # as publish does
        self.loaded = load_agent(self.published)  # once for the conversation, as a container does
        self.resolver = ConfigResolver(self.platform_layer)
        stamp = now_iso()
        self.session = Session(
            session_id=new_id("ses"),
            interlocutor_id=new_id("itl"),
            created_at=stamp,
            updated_at=stamp,
            key=SessionKey(
                tenant_id=self.published.tenant_id,
                agent_id=self.agent_id,
                channel=self.channel,
                user_id=self.user_id,
            ),
        )
        self.interlocutor = InterlocutorData(interlocutor_id=self.session.interlocutor_id)
        self.transcript: list[TranscriptMessage] = []
        self.records: list[TurnRecord] = []

    def config_for(self, scenario_id: str | None = None, step_id: str | None = None) -> Config:
        return self.resolver.for_turn(
            {}, self.published, channel=self.channel, scenario_id=scenario_id, step_id=step_id
        ).config

    def values(self, now_s: float | None = None) -> dict[str, Any]:
        """Every live stored value: persistent fields, then the session's."""
        moment = time.time() if now_s is None else now_s
        live = {name: value.value for name, value in self.interlocutor.fields.items() if value.is_live(moment)}
        return {**live, **self.session.variables}

    def send(self, message: str, llm: LlmProvider | None = None) -> TurnResult:
        """One turn, as runtime/execute.py runs it; `llm` overrides the agent's provider for this turn."""
        now_s, stamp = time.time(), now_iso()
        session, turn_number = self.session, self.session.turn_count + 1
        turn_id = new_id("turn")
        if session.status is SessionStatus.HANDOFF:
            return self._silent(message, turn_id, turn_number, stamp, now_s)
        where = session.scenario
        config = self.config_for(where.scenario_id if where else None, where.step_id if where else None)
        ctx = turn_context(self.loaded, session, self.interlocutor, config=config, message=message,
                           channel=self.channel, now_s=now_s)
        deps = FocalDeps(llm=llm or self.llm, embedder=self.embedder, tools=self.tools, resolve_config=self.config_for)
        result = run_focal(ctx, deps, tool_deadline_s=time.monotonic() + TOOL_BUDGET_S)
        reply, fields = result.enforced.reply, self.bundle.fields
        ids = {
            "turn_id": turn_id,
            "session_id": session.session_id,
            "tenant_id": self.published.tenant_id,
            "agent_id": self.agent_id,
            "interlocutor_id": session.interlocutor_id,
        }
        record = turn_record(
            result,
            ids=ids,
            agent_version=self.published.version,
            turn_number=turn_number,
            channel=self.channel,
            message=message,
            reply=reply,
            fields=fields,
            now_iso=stamp,
        )
        self.session = next_session(
            session,
            result,
            turn_number=turn_number,
            message=message,
            reply=reply,
            fields=fields,
            now_iso=stamp,
            now_s=now_s,
            history_turns=result.config.session.history_turns,
        )
        self.interlocutor = apply_changes(self.interlocutor, result.field_changes, stamp, now_s)
        self._keep(record, stamp, message, reply)
        return TurnResult(reply=reply, outcome=outcome_of(result), record=record, values=self.values(now_s))

    def _silent(self, message: str, turn_id: str, turn_number: int, stamp: str, now_s: float) -> TurnResult:
        """During a handoff the agent stays silent (as runtime/execute.py's silent turn)."""
        session, outcome = self.session, Outcome(handoff=True)
        record = TurnRecord(
            turn_id=turn_id,
            session_id=session.session_id,
            tenant_id=self.published.tenant_id,
            agent_id=self.agent_id,
            agent_version=self.published.version,
            interlocutor_id=session.interlocutor_id,
            turn_number=turn_number,
            channel=self.channel,
            reply="",
            outcome=outcome,
            created_at=stamp,
            message=mask_text(message, self.bundle.fields, self.values(now_s)),
        )
        self.session = session.model_copy(
            update={
                "version": session.version + 1,
                "turn_count": turn_number,
                "updated_at": stamp,
                "last_activity_s": now_s,
            }
        )
        self._keep(record, stamp, message, None)
        return TurnResult(reply=None, outcome=outcome, record=record, values=self.values(now_s))

    def _keep(self, record: TurnRecord, stamp: str, message: str, reply: str | None) -> None:
        self.records.append(record)
        self.transcript.append(TranscriptMessage(message_id=new_id("msg"), role="user", text=message, created_at=stamp))
        if reply is not None:
            self.transcript.append(
                TranscriptMessage(message_id=new_id("msg"), role="agent", text=reply, created_at=stamp)
            )


def apply_changes(data: InterlocutorData, changes: Sequence[FieldChange], stamp: str, now_s: float) -> InterlocutorData:
    """The interlocutor after a turn: each change a new ACTIVE version (what the store's commit does)."""
    if not changes:
        return data
    fields = dict(data.fields)
    for change in changes:
        before = fields.get(change.name)
        expires = now_s + change.ttl_days * 86400 if change.ttl_days is not None else None
        fields[change.name] = FieldValue(
            name=change.name,
            value=change.value,
            source=change.source,
            version=before.version + 1 if before is not None else 1,
            confidence=change.confidence,
            updated_at=stamp,
            expires_at=expires,
        )
    return data.model_copy(update={"fields": fields})
