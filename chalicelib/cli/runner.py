"""Run an agent bundle in this process: the server's turn gateway (runtime/gateway.py) over the
in-memory stores (runtime/in_memory.py) instead of DynamoDB.

Lock, phase 1's reads, FOCAL, the one commit and its conditions are the very code the server runs.
Tools are answered by a `StubbedTools` mapping from the test file (an offline stand-in for the tool
endpoints), and a turn's LLM calls may be scripted (`ScriptedLlm`, an inline cassette).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.bundle import AgentBundle, PublishedBundle
from chalicelib.domain.ids import now_iso
from chalicelib.domain.session import SessionKey
from chalicelib.domain.turn import Outcome, TurnRecord
from chalicelib.focal.index import embed_bundle
from chalicelib.focal.types import ToolFailed, ToolRequest, ToolRunner
from chalicelib.providers.llm import EmbeddingProvider, LlmProvider, LlmRequest, LlmResponse, Task
from chalicelib.providers.replay import Exchange, ReplayLlm
from chalicelib.runtime.gateway import SYNC_TURN, Arrival, Skipped, run_turn
from chalicelib.runtime.in_memory import InMemoryServices, LocalProviders

LOCAL_TENANT = "local"


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
    """One conversation (session) with a bundle, through the server's turn gateway over in-memory stores."""

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
        self.services = InMemoryServices(LocalProviders(llm=self.llm, embedder=self.embedder, tools=self.tools),
                                         self.platform_layer)
        self.services.publish(self.published)
        self.key = SessionKey(tenant_id=self.published.tenant_id, agent_id=self.agent_id, channel=self.channel,
                              user_id=self.user_id)
        self.session_id: str | None = None

    def send(self, message: str, llm: LlmProvider | None = None) -> TurnResult:
        """One turn, as the server runs a synchronous one; `llm` overrides the agent's model for this turn."""
        with self.services.answering_with(llm):
            done = run_turn(self.services, Arrival(key=self.key, text=message, session_id=self.session_id),
                            SYNC_TURN)
        if isinstance(done, Skipped):  # a sync turn commits or raises: this would be an engine bug
            raise RuntimeError(f"the turn was not committed ({done.value})")
        self.session_id = done.session.session_id
        return TurnResult(reply=done.reply, outcome=done.outcome, record=done.record, values=self.values())

    def values(self, now_s: float | None = None) -> dict[str, Any]:
        """Every live stored value: persistent fields, then the session's."""
        moment = time.time() if now_s is None else now_s
        session = self.services.sessions.get(self.key.tenant_id, self.session_id) if self.session_id else None
        if session is None:
            return {}
        data = self.services.interlocutors.load(self.key.tenant_id, session.interlocutor_id, moment)
        live = {name: value.value for name, value in data.fields.items()} if data else {}
        return {**live, **session.variables}
