"""The turn gateway over the in-memory stores: what `ruche test` runs is the server's turn path."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.cli.runner import InProcessAgent, StubbedTools
from chalicelib.config.resolver import NOWHERE, ConfigPosition, ConfigResolver, ResolvedConfig
from chalicelib.domain.bundle import PublishedBundle, parse_bundle
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.session import SessionStatus
from chalicelib.providers.embeddings import OfflineEmbedder
from chalicelib.providers.offline import OfflineLlm
from chalicelib.runtime.gateway import SYNC_TURN, Arrival, run_turn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
BOOKING_TOOLS = {"check_slot": {"available": True}, "book_appointment": {"booking_id": "HD-40012"}}


def dental(tools: dict[str, Any] | None = None) -> InProcessAgent:
    bundle = parse_bundle(yaml.safe_load((EXAMPLES / "dental-bookings.yaml").read_text()))
    return InProcessAgent(bundle, agent_id="dental-bookings", llm=OfflineLlm(), embedder=OfflineEmbedder(),
                          tools=StubbedTools(tools or BOOKING_TOOLS))


class CountingResolver(ConfigResolver):
    """The real resolver, counting the positions a turn asks it for."""

    def __init__(self, platform_layer: dict[str, Any]) -> None:
        super().__init__(platform_layer)
        self.asked: list[tuple[str | None, str | None]] = []

    def for_turn(self, tenant_layer: dict[str, Any], published: PublishedBundle, at: ConfigPosition = NOWHERE, *,
                 tenant_version: str | None = None) -> ResolvedConfig:
        self.asked.append((at.scenario_id, at.step_id))
        return super().for_turn(tenant_layer, published, at, tenant_version=tenant_version)


def test_a_conversation_run_in_process_is_committed_through_the_stores_like_a_served_one() -> None:
    agent = dental()

    first = agent.send("I'd like to book an appointment")
    second = agent.send("a cleaning please")

    svc, session_id = agent.services, agent.session_id
    assert session_id is not None
    session = svc.sessions.get(agent.key.tenant_id, session_id)
    assert session is not None and session.version == 2 and session.turn_count == 2
    assert session.scenario is not None and (session.scenario.scenario_id, session.scenario.step_id) == (
        "book", "choose_time")
    said = [(message.role, message.text) for message in svc.sessions.messages(agent.key.tenant_id, session_id)]
    assert said == [("user", "I'd like to book an appointment"), ("agent", first.reply),
                    ("user", "a cleaning please"), ("agent", second.reply)]
    records = svc.sessions.turns(agent.key.tenant_id, session_id).items
    assert [record.turn_id for record in records] == [first.record.turn_id, second.record.turn_id]  # type: ignore[union-attr]
    assert second.values["service"] == "cleaning"


def test_config_is_resolved_once_for_each_step_a_turn_visits() -> None:
    agent = dental()
    counting = CountingResolver({})
    agent.services.resolver = counting

    agent.send("I'd like to book an appointment")  # enters book/choose_service
    entering = list(counting.asked)
    counting.asked.clear()
    agent.send("a cleaning please")  # moves choose_service -> choose_time

    assert len(entering) == len(set(entering))
    assert (None, None) in entering and ("book", "choose_service") in entering
    assert len(counting.asked) == len(set(counting.asked))
    assert ("book", "choose_service") in counting.asked and ("book", "choose_time") in counting.asked


def test_every_log_line_of_a_turn_names_tenant_agent_and_turn_and_its_session_once_loaded(
        log_lines: io.StringIO) -> None:
    agent = dental()

    done = agent.send("I'd like to book an appointment")

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert lines, "the turn logged nothing"
    assert any(line["message"] == "turn committed" for line in lines)
    for line in lines:
        assert (line["tenant_id"], line["agent_id"]) == (agent.key.tenant_id, "dental-bookings"), line
        assert line["turn_id"] == done.record.turn_id, line  # type: ignore[union-attr]
    committed = next(line for line in lines if line["message"] == "turn committed")
    assert committed["session_id"] == agent.session_id


def test_a_handed_off_session_stays_silent_and_keeps_the_message_for_the_human() -> None:
    agent = dental()
    agent.send("I'd like to book an appointment")
    svc, tenant = agent.services, agent.key.tenant_id
    assert agent.session_id is not None
    session = svc.sessions.get(tenant, agent.session_id)
    assert session is not None
    svc.sessions.save(session.model_copy(update={"status": SessionStatus.HANDOFF}), expected_version=session.version)

    result = agent.send("hello? is a person there?")

    assert result.reply is None and result.outcome.handoff
    assert result.record is not None and result.record.kind == "silent"
    last = svc.sessions.messages(tenant, agent.session_id)[-1]
    assert (last.role, last.text) == ("user", "hello? is a person there?")


def test_a_sync_turn_for_an_unknown_agent_or_an_ended_session_is_refused_and_commits_nothing() -> None:
    agent = dental()
    agent.send("I'd like to book an appointment")
    svc, tenant = agent.services, agent.key.tenant_id
    assert agent.session_id is not None

    stranger = agent.key.model_copy(update={"agent_id": "nobody"})
    with pytest.raises(NotFound):
        run_turn(svc, Arrival(key=stranger, text="hi"), SYNC_TURN)
    with pytest.raises(NotFound):
        run_turn(svc, Arrival(key=agent.key, text="hi", session_id="ses_missing"), SYNC_TURN)
    session = svc.sessions.get(tenant, agent.session_id)
    assert session is not None
    svc.sessions.save(session.model_copy(update={"status": SessionStatus.ENDED}), expected_version=session.version)
    with pytest.raises(Conflict):
        run_turn(svc, Arrival(key=agent.key, text="hi", session_id=agent.session_id), SYNC_TURN)

    assert svc.sessions.get(tenant, agent.session_id).turn_count == 1  # type: ignore[union-attr]


def test_a_sync_turn_waits_for_the_lock_and_gives_up_with_a_conflict() -> None:
    agent = dental()
    svc = agent.services
    svc.session_lock.acquire(f"session:{agent.key.as_string()}", 60.0)  # another turn of the session runs
    patient = dataclasses.replace(SYNC_TURN, lock_wait_s=0.2)

    with pytest.raises(Conflict, match="still running"):
        run_turn(svc, Arrival(key=agent.key, text="I'd like to book an appointment"), patient)

    assert svc.turn_reads.start(agent.key).session_id is None  # nothing was opened or committed
