"""Play the conversations of one test file, in this process (default) or against a running stack.

In-process, the LLM is the offline provider; a cassette beside the test file
(`x.cassette.yaml`) is replayed instead when it exists, and `record` runs the provider the config
names (platform env + bundle) while recording every exchange into that cassette. A turn's
`model:` script answers that turn's calls of the scripted tasks, before any of the above.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from chalicelib.cli.bundle_files import load_bundle
from chalicelib.cli.client import ApiClient, ApiError
from chalicelib.cli.common import CliFailure
from chalicelib.cli.conversation import session_records
from chalicelib.cli.expectations import check_turn
from chalicelib.cli.runner import InProcessAgent, ScriptedLlm, StubbedTools, TurnResult
from chalicelib.cli.testfile import Conversation, LoadedTestFile
from chalicelib.cli.trace import format_record
from chalicelib.config.resolver import layers_for, platform_layer_from_env, resolve
from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.turn import Outcome
from chalicelib.providers.embeddings import OfflineEmbedder
from chalicelib.providers.factory import build_llm
from chalicelib.providers.llm import LlmProvider
from chalicelib.providers.offline import OfflineLlm
from chalicelib.providers.replay import ReplayLlm

Status = Literal["passed", "failed", "skipped", "error"]


@dataclass
class TurnReport:
    number: int
    message: str
    misses: list[str]
    trace: str = ""


@dataclass
class ConversationReport:
    file: str
    name: str
    line: int
    status: Status = "passed"
    reason: str = ""  # why it was skipped or errored
    turns: list[TurnReport] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def failed_turns(self) -> list[TurnReport]:
        return [turn for turn in self.turns if turn.misses]


def run_in_process(loaded: LoadedTestFile, *, record: bool = False) -> Iterator[ConversationReport]:
    """Each conversation of the file against its bundle, in memory. Raises CliFailure when the file
    names no bundle (exit 2) or the bundle is invalid (exit 1)."""
    bundle_path = loaded.bundle_path
    if bundle_path is None:
        raise CliFailure(f"{loaded.path}:1: in-process runs need `bundle:` (the path of the agent bundle)")
    bundle, _ = load_bundle(bundle_path)
    platform = platform_layer_from_env(os.environ) if record else {}
    llm = _base_llm(loaded, bundle, platform, record=record)
    embedder = OfflineEmbedder()  # deterministic retrieval, so recorded exchanges replay as recorded
    for index, conversation in enumerate(loaded.spec.conversations):
        report = _report(loaded, index, conversation)
        started = time.perf_counter()
        agent = InProcessAgent(
            bundle,
            agent_id=loaded.agent_id or "agent",
            llm=llm,
            embedder=embedder,
            tools=StubbedTools(conversation.tools),
            platform_layer=platform,
            channel=conversation.channel.value,
            user_id=conversation.user_id,
        )
        try:
            for number, turn in enumerate(conversation.turns, start=1):
                scripted = ScriptedLlm(llm, [call.exchange() for call in turn.model]) if turn.model else None
                result = agent.send(turn.user, llm=scripted)
                if scripted is not None:
                    result = _with_problems(result, [*scripted.problems, *scripted.unused()])
                _add_turn(report, number, turn.user, check_turn(turn.expect, result), result)
        except Exception as exc:  # an engine bug must not hide the other conversations' results
            report.status, report.reason = "error", f"{type(exc).__name__}: {exc}"
        report.duration_s = time.perf_counter() - started
        yield report


def run_remote(loaded: LoadedTestFile, client: ApiClient, agent_id: str | None = None) -> Iterator[ConversationReport]:
    """Each conversation against a running stack (POST turns, then the turn records for traces)."""
    agent = agent_id or loaded.agent_id
    if agent is None:
        raise CliFailure(f"{loaded.path}:1: runs against a server need `agent:` in the file or --agent")
    base = f"/v1/agents/{urllib.parse.quote(agent, safe='')}"
    for index, conversation in enumerate(loaded.spec.conversations):
        report = _report(loaded, index, conversation)
        if conversation.needs_in_process:
            report.status, report.reason = (
                "skipped",
                "stubbed tools or a model script need the in-process runner",
            )
            yield report
            continue
        started = time.perf_counter()
        user = f"{conversation.user_id}-{secrets.token_hex(4)}"  # a fresh interlocutor every run
        session_id: str | None = None
        extracted: dict[str, Any] = {}
        for number, turn in enumerate(conversation.turns, start=1):
            body = {
                "user_id": user,
                "channel": conversation.channel.value,
                "message": turn.user,
                **({"session_id": session_id} if session_id else {}),
            }
            try:
                answer = client.post(f"{base}/turns", body)
            except ApiError as exc:
                if exc.status == 404:
                    raise CliFailure(f"agent {agent!r} not found on {client.url} ({exc.code})") from None
                report.status, report.reason = "error", str(exc)
                break
            session_id = str(answer["session_id"])
            records = session_records(client, agent, session_id)
            record = records[-1] if records else None
            extracted.update(record.fields_extracted if record else {})
            stored = client.get(f"{base}/interlocutors/{urllib.parse.quote(str(answer['interlocutor_id']))}")
            values = {
                **extracted,
                **{name: item.get("value") for name, item in (stored or {}).get("fields", {}).items()},
            }
            result = TurnResult(
                reply=answer.get("reply"),
                outcome=Outcome.model_validate(answer.get("outcome") or {}),
                record=record,
                values=values,
            )
            _add_turn(report, number, turn.user, check_turn(turn.expect, result), result)
        report.duration_s = time.perf_counter() - started
        yield report


def _base_llm(loaded: LoadedTestFile, bundle: AgentBundle, platform: dict[str, Any], *, record: bool) -> LlmProvider:
    cassette = loaded.cassette_path
    if record:
        config = resolve(layers_for(platform, {}, bundle)).config
        api_key = os.environ.get(config.llm.api_key_env) if config.llm.api_key_env else None
        return build_llm(config.llm, api_key, allow_private=config.network.allow_private, cassette=str(cassette))
    if cassette.is_file():
        return ReplayLlm.from_file(cassette)
    return OfflineLlm()


def _report(loaded: LoadedTestFile, index: int, conversation: Conversation) -> ConversationReport:
    return ConversationReport(
        file=str(loaded.path), name=conversation.name, line=loaded.line_of(f"conversations[{index}]")
    )


def _with_problems(result: TurnResult, problems: list[str]) -> TurnResult:
    if not problems:
        return result
    return TurnResult(
        reply=result.reply,
        outcome=result.outcome,
        record=result.record,
        values=result.values,
        problems=(*result.problems, *(f"model script: {problem}" for problem in problems)),
    )


def _add_turn(report: ConversationReport, number: int, message: str, misses: list[str], result: TurnResult) -> None:
    trace = format_record(result.record) if misses and result.record is not None else ""
    report.turns.append(TurnReport(number=number, message=message, misses=misses, trace=trace))
    if misses:
        report.status = "failed"
