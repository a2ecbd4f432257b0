"""The in-memory stores keep the promises a turn relies on (stores/ports.py), as DynamoDB does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from chalicelib.domain.bundle import NewVersion, parse_bundle
from chalicelib.domain.errors import Conflict, StaleSession
from chalicelib.domain.interlocutor import FieldChange, ValueSource, ValueStatus
from chalicelib.domain.session import Session, SessionKey
from chalicelib.domain.turn import Outcome, TranscriptMessage, TurnCommit, TurnRecord
from chalicelib.stores.memory import (
    MemoryBundleStore,
    MemoryInterlocutorStore,
    MemorySessionLock,
    MemorySessionStore,
    MemoryTables,
    MemoryTurnReads,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
KEY = SessionKey(tenant_id="t1", agent_id="desk", channel="api", user_id="u1")


@pytest.fixture
def tables() -> MemoryTables:
    return MemoryTables()


def stores(tables: MemoryTables) -> tuple[MemorySessionStore, MemoryInterlocutorStore]:
    interlocutors = MemoryInterlocutorStore(tables)
    return MemorySessionStore(tables, interlocutors), interlocutors


def commit_of(session: Session, turn_id: str, *, fence: int | None = None,
              changes: list[FieldChange] | None = None) -> TurnCommit:
    number = session.turn_count + 1
    record = TurnRecord(turn_id=turn_id, session_id=session.session_id, tenant_id="t1", agent_id="desk",
                        agent_version=1, interlocutor_id=session.interlocutor_id, turn_number=number, channel="api",
                        message="hi", reply="hello", outcome=Outcome(), created_at="2026-12-06T00:00:00Z")
    after = session.model_copy(update={"version": session.version + 1, "turn_count": number})
    said = [TranscriptMessage(message_id=f"{turn_id}-u", role="user", text="hi", created_at=""),
            TranscriptMessage(message_id=f"{turn_id}-a", role="agent", text="hello", created_at="")]
    return TurnCommit(session=after, expected_version=session.version, record=record, transcript=said,
                      field_changes=changes or [], now_s=time.time(), fence=fence)


def test_a_session_key_has_one_open_session_until_it_idles_out(tables: MemoryTables) -> None:
    sessions, interlocutors = stores(tables)
    owner = interlocutors.resolve("t1", "api", "u1")

    first = sessions.open(KEY, owner, 1000.0, idle_timeout_s=60)
    again = sessions.open(KEY, owner, 1030.0, idle_timeout_s=60)
    later = sessions.open(KEY, owner, 1100.0, idle_timeout_s=60)

    assert again.session_id == first.session_id
    assert later.session_id != first.session_id
    assert interlocutors.resolve("t1", "api", "u1") == owner


def test_a_commit_lands_whole_and_a_stale_fenced_or_repeated_one_changes_nothing(tables: MemoryTables) -> None:
    sessions, interlocutors = stores(tables)
    session = sessions.open(KEY, interlocutors.resolve("t1", "api", "u1"), time.time())
    sessions.commit(commit_of(session, "turn_a", fence=5))
    after = sessions.get("t1", session.session_id)
    assert after is not None and after.version == 1 and after.fence == 5

    with pytest.raises(StaleSession):  # loaded before turn_a committed
        sessions.commit(commit_of(session, "turn_b"))
    with pytest.raises(StaleSession) as taken_over:  # its lock was taken over by the turn that committed
        sessions.commit(commit_of(after, "turn_c", fence=4))
    assert taken_over.value.details["reason"] == "lock_taken_over"
    with pytest.raises(StaleSession) as repeated:  # a turn id names one committed turn
        sessions.commit(commit_of(after, "turn_a", fence=6))
    assert repeated.value.details["reason"] == "already_answered"

    assert [message.text for message in sessions.messages("t1", session.session_id)] == ["hi", "hello"]
    assert sessions.committed_turn(KEY, "turn_a") is not None and sessions.committed_turn(KEY, "turn_c") is None
    assert sessions.reply_of("t1", session.session_id, 1) == "hello"


def test_a_committed_field_change_supersedes_the_value_before_it(tables: MemoryTables) -> None:
    sessions, interlocutors = stores(tables)
    owner = interlocutors.resolve("t1", "api", "u1")
    session = sessions.open(KEY, owner, time.time())
    email = FieldChange(name="email", value="ana@example.com", source=ValueSource.USER)
    sessions.commit(commit_of(session, "turn_a", changes=[email]))
    moved = sessions.get("t1", session.session_id)
    assert moved is not None
    sessions.commit(commit_of(moved, "turn_b", changes=[FieldChange(name="email", value="ana@example.org",
                                                                    source=ValueSource.USER, ttl_days=1)]))

    live = interlocutors.load("t1", owner, time.time())
    assert live is not None and live.values() == {"email": "ana@example.org"}
    assert [(value.version, value.status) for value in interlocutors.history("t1", owner)] == [
        (1, ValueStatus.SUPERSEDED), (2, ValueStatus.ACTIVE)]
    assert interlocutors.load("t1", owner, time.time() + 2 * 86_400).values() == {}  # type: ignore[union-attr]


def test_a_turn_start_reads_the_head_the_identity_and_the_open_session(tables: MemoryTables) -> None:
    sessions, interlocutors = stores(tables)
    bundles = MemoryBundleStore(tables)
    reads = MemoryTurnReads(tables, bundles, interlocutors, sessions)
    assert reads.start(KEY).latest_version is None

    bundle = parse_bundle(yaml.safe_load((EXAMPLES / "dental-bookings.yaml").read_text()))
    new = NewVersion(bundle, vectors={}, embedding_model="offline")
    assert bundles.publish("t1", "desk", new) == 1
    with pytest.raises(Conflict):
        bundles.publish("t1", "desk", new, expected_version=0)
    owner = interlocutors.resolve("t1", "api", "u1")
    session = sessions.open(KEY, owner, time.time())

    start = reads.start(KEY)
    assert (start.latest_version, start.interlocutor_id, start.session_id) == (1, owner, session.session_id)
    assert bundles.delete("t1", "desk") and reads.start(KEY).latest_version is None


def test_a_lock_is_held_until_released_or_expired_and_each_holder_gets_a_newer_token() -> None:
    lock = MemorySessionLock()
    first = lock.acquire("session:k", 0.05)
    assert first is not None and lock.acquire("session:k", 10.0) is None
    time.sleep(0.06)
    second = lock.acquire("session:k", 10.0)
    assert second is not None and second > first
    assert not lock.release("session:k", first)  # an expired holder cannot free the new one's lock
    assert lock.release("session:k", second) and lock.acquire("session:k", 1.0) is not None
