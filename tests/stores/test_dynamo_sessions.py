"""Contract of DynamoSessionStore, against moto in-process and moto_server over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import boto3
import pytest
from botocore.config import Config

from chalicelib.domain.errors import InvalidInput, StaleSession, Unavailable
from chalicelib.domain.interlocutor import FieldChange, ValueSource, ValueStatus
from chalicelib.domain.session import Session, SessionKey, SessionStatus
from chalicelib.domain.turn import Outcome, TranscriptMessage, TurnCommit, TurnRecord
from chalicelib.stores.dynamo_interlocutors import DynamoInterlocutorStore
from chalicelib.stores.dynamo_sessions import DynamoSessionStore
from tests.conftest import Aws

T = TypeVar("T")
TENANT = "acme"
NOW = 1_800_000_000.0
KEY = SessionKey(tenant_id=TENANT, agent_id="support", channel="api", user_id="u1")


@pytest.fixture
def sessions(any_aws: Aws) -> DynamoSessionStore:
    return DynamoSessionStore(any_aws.dynamodb, any_aws.table)


@pytest.fixture
def interlocutors(any_aws: Aws) -> DynamoInterlocutorStore:
    return DynamoInterlocutorStore(any_aws.dynamodb, any_aws.table)


def isolate_calls(client: Any) -> None:
    """Make each DynamoDB call of this client isolated from the others, as DynamoDB's are.

    moto applies a transaction by snapshotting the whole table and restoring it on a failed
    condition (moto/dynamodb/models/__init__.py, transact_write_items), so two transactions from
    threads can undo each other there, which real DynamoDB never does. Serialising each call keeps
    the race the stores must handle: between reading a version and writing on top of it.
    """
    lock = threading.RLock()

    def hold(**_: Any) -> None:
        lock.acquire()

    def let_go(**_: Any) -> None:
        lock.release()

    client.meta.events.register("before-call.dynamodb", hold)
    client.meta.events.register("after-call.dynamodb", let_go)
    client.meta.events.register("after-call-error.dynamodb", let_go)


def run_together(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` on `count` threads released at the same moment; return their results."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results.append(work(index))
        except BaseException as exc:  # surfaced below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def dead_dynamodb() -> Any:
    """A DynamoDB client of an endpoint nothing listens on, failing at once."""
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )


def a_record(session: Session, turn_number: int, reply: str = "hi") -> TurnRecord:
    return TurnRecord(
        turn_id=f"turn_{turn_number}",
        session_id=session.session_id,
        tenant_id=session.key.tenant_id,
        agent_id=session.key.agent_id,
        agent_version=1,
        interlocutor_id=session.interlocutor_id,
        turn_number=turn_number,
        channel=session.key.channel,
        message="hello",
        reply=reply,
        outcome=Outcome(),
    )


def a_turn(
    session: Session,
    *,
    expected: int,
    reply: str = "hi",
    message_id: str = "m1",
    changes: list[FieldChange] | None = None,
) -> TurnCommit:
    number = expected + 1
    return TurnCommit(
        session=session.model_copy(
            update={"version": number, "turn_count": number, "history": [{"role": "agent", "text": reply}]}
        ),
        expected_version=expected,
        record=a_record(session, number, reply),
        transcript=[
            TranscriptMessage(message_id, "user", "hello", "2027-01-15T08:00:00Z"),
            TranscriptMessage(f"{message_id}-reply", "agent", reply, "2027-01-15T08:00:01Z"),
        ],
        field_changes=changes or [],
        now_s=NOW + number,
    )


def test_opening_a_key_twice_returns_the_same_session(sessions: DynamoSessionStore) -> None:
    first = sessions.open(KEY, "itl_1", NOW)
    assert first.version == 0 and first.status is SessionStatus.ACTIVE
    assert sessions.open(KEY, "itl_1", NOW + 60) == first
    assert sessions.get(TENANT, first.session_id) == first
    assert sessions.open(KEY.model_copy(update={"channel": "slack"}), "itl_1", NOW) != first


def test_racing_opens_end_with_one_session(any_aws: Aws, sessions: DynamoSessionStore) -> None:
    isolate_calls(any_aws.dynamodb)
    opened = run_together(5, lambda _: sessions.open(KEY, "itl_1", NOW).session_id)
    assert len(opened) == 5 and len(set(opened)) == 1


def test_an_idle_session_is_not_reopened(sessions: DynamoSessionStore) -> None:
    first = sessions.open(KEY, "itl_1", NOW)
    assert sessions.open(KEY, "itl_1", NOW + 3_600, idle_timeout_s=7_200) == first
    later = sessions.open(KEY, "itl_1", NOW + 3 * 3_600, idle_timeout_s=7_200)
    assert later.session_id != first.session_id
    assert sessions.open(KEY, "itl_1", NOW + 3 * 3_600 + 1, idle_timeout_s=7_200) == later


def test_an_ended_session_is_not_reopened(sessions: DynamoSessionStore) -> None:
    first = sessions.open(KEY, "itl_1", NOW)
    sessions.save(first.model_copy(update={"status": SessionStatus.ENDED}), expected_version=0)
    assert sessions.open(KEY, "itl_1", NOW + 1).session_id != first.session_id


def test_a_save_from_a_stale_version_is_rejected(sessions: DynamoSessionStore) -> None:
    first = sessions.open(KEY, "itl_1", NOW)
    sessions.save(first.model_copy(update={"status": SessionStatus.HANDOFF}), expected_version=0)
    with pytest.raises(StaleSession):
        sessions.save(first.model_copy(update={"status": SessionStatus.ENDED}), expected_version=0)
    stored = sessions.get(TENANT, first.session_id)
    assert stored is not None and stored.status is SessionStatus.HANDOFF and stored.version == 1


def test_a_commit_writes_session_record_transcript_and_field_values_together(
    sessions: DynamoSessionStore,
    interlocutors: DynamoInterlocutorStore,
) -> None:
    interlocutor = interlocutors.resolve(TENANT, "api", "u1")
    interlocutors.write(TENANT, interlocutor, [FieldChange("email", "old@example.com", ValueSource.USER)], NOW)
    session = sessions.open(KEY, interlocutor, NOW)
    sessions.commit(
        a_turn(
            session,
            expected=0,
            reply="welcome",
            changes=[FieldChange("email", "ada@example.com", ValueSource.USER)],
        )
    )
    stored = sessions.get(TENANT, session.session_id)
    assert stored is not None and stored.version == 1 and stored.history == [{"role": "agent", "text": "welcome"}]
    assert [record.reply for record in sessions.turns(TENANT, session.session_id).items] == ["welcome"]
    assert [(m.role, m.text) for m in sessions.messages(TENANT, session.session_id)] == [
        ("user", "hello"),
        ("agent", "welcome"),
    ]
    data = interlocutors.load(TENANT, interlocutor, NOW + 5)
    assert data is not None and data.values() == {"email": "ada@example.com"}
    assert [v.status for v in interlocutors.history(TENANT, interlocutor)] == [
        ValueStatus.SUPERSEDED,
        ValueStatus.ACTIVE,
    ]


def test_a_commit_from_a_stale_version_is_rejected_and_writes_nothing(
    sessions: DynamoSessionStore,
    interlocutors: DynamoInterlocutorStore,
) -> None:
    interlocutor = interlocutors.resolve(TENANT, "api", "u1")
    session = sessions.open(KEY, interlocutor, NOW)
    sessions.commit(a_turn(session, expected=0, reply="first"))
    late = a_turn(
        session,
        expected=0,
        reply="late",
        message_id="m2",
        changes=[FieldChange("email", "late@example.com", ValueSource.USER)],
    )
    late = TurnCommit(
        session=late.session,
        expected_version=0,
        record=a_record(session, 2, "late"),
        transcript=late.transcript,
        field_changes=late.field_changes,
        now_s=late.now_s,
    )
    with pytest.raises(StaleSession):
        sessions.commit(late)
    stored = sessions.get(TENANT, session.session_id)
    assert stored is not None and stored.history == [{"role": "agent", "text": "first"}]
    assert [record.reply for record in sessions.turns(TENANT, session.session_id).items] == ["first"]
    assert [m.message_id for m in sessions.messages(TENANT, session.session_id)] == ["m1", "m1-reply"]
    assert interlocutors.history(TENANT, interlocutor) == []


def test_a_commit_on_a_session_never_opened_creates_it(sessions: DynamoSessionStore) -> None:
    session = Session(session_id="ses_direct", key=KEY, interlocutor_id="itl_1")
    sessions.commit(a_turn(session, expected=0))
    stored = sessions.get(TENANT, "ses_direct")
    assert stored is not None and stored.version == 1
    with pytest.raises(StaleSession):
        sessions.commit(a_turn(session, expected=0))


def fenced(turn: TurnCommit, fence: int) -> TurnCommit:
    """The turn as run under a session lock holding this fencing token."""
    return replace(turn, fence=fence)


def test_a_lower_fencing_token_cannot_commit_after_a_higher_one(sessions: DynamoSessionStore) -> None:
    # GIVEN a session whose last turn committed under lock token 200
    session = sessions.open(KEY, "itl_1", NOW)
    sessions.commit(fenced(a_turn(session, expected=0, reply="newer lock"), 200))
    current = sessions.get(TENANT, session.session_id)
    assert current is not None
    # WHEN a turn still holding the older token 100 commits on top of what it read (version matches)
    with pytest.raises(StaleSession) as raised:
        sessions.commit(fenced(a_turn(current, expected=1, reply="older lock", message_id="m2"), 100))
    # THEN it is refused as a lost lock, and nothing of it was written
    assert raised.value.details["reason"] == "lock_taken_over"
    stored = sessions.get(TENANT, session.session_id)
    assert stored is not None and stored.version == 1 and stored.history == [{"role": "agent", "text": "newer lock"}]
    assert [record.reply for record in sessions.turns(TENANT, session.session_id).items] == ["newer lock"]
    assert [m.message_id for m in sessions.messages(TENANT, session.session_id)] == ["m1", "m1-reply"]
    # AND the holder of the newer lock (or a newer one still) goes on committing
    sessions.commit(fenced(a_turn(current, expected=1, reply="same lock", message_id="m2"), 200))
    later = sessions.get(TENANT, session.session_id)
    assert later is not None
    sessions.commit(fenced(a_turn(later, expected=2, reply="next lock", message_id="m3"), 300))
    assert [r.reply for r in sessions.turns(TENANT, session.session_id).items] == [
        "newer lock", "same lock", "next lock"]


def test_a_status_change_outside_a_turn_keeps_the_fence(sessions: DynamoSessionStore) -> None:
    session = sessions.open(KEY, "itl_1", NOW)
    sessions.commit(fenced(a_turn(session, expected=0), 200))
    current = sessions.get(TENANT, session.session_id)
    assert current is not None
    sessions.save(current.model_copy(update={"status": SessionStatus.HANDOFF}), expected_version=1)
    after_save = sessions.get(TENANT, session.session_id)
    assert after_save is not None and after_save.status is SessionStatus.HANDOFF
    with pytest.raises(StaleSession) as raised:
        sessions.commit(fenced(a_turn(after_save, expected=2, message_id="m2"), 100))
    assert raised.value.details["reason"] == "lock_taken_over"
    assert [r.turn_number for r in sessions.turns(TENANT, session.session_id).items] == [1]


def test_a_stale_version_under_the_current_lock_is_not_reported_as_a_lost_lock(
    sessions: DynamoSessionStore,
) -> None:
    session = sessions.open(KEY, "itl_1", NOW)
    sessions.commit(fenced(a_turn(session, expected=0), 200))
    with pytest.raises(StaleSession) as raised:
        sessions.commit(fenced(a_turn(session, expected=0, message_id="m2"), 300))
    assert raised.value.details.get("reason") != "lock_taken_over"


def test_a_turn_over_the_transaction_limit_is_refused_before_anything_is_written(
    sessions: DynamoSessionStore,
) -> None:
    session = sessions.open(KEY, "itl_1", NOW)
    turn = a_turn(session, expected=0)
    huge = [TranscriptMessage(f"m{i}", "user", "spam", "t") for i in range(99)]
    with pytest.raises(InvalidInput, match="at most 100"):
        sessions.commit(
            TurnCommit(session=turn.session, expected_version=0, record=turn.record, transcript=huge, now_s=NOW)
        )
    assert sessions.get(TENANT, session.session_id) == session
    assert sessions.messages(TENANT, session.session_id) == []


def test_turns_come_oldest_first_in_pages(sessions: DynamoSessionStore) -> None:
    session = sessions.open(KEY, "itl_1", NOW)
    for version in range(5):
        sessions.commit(a_turn(session, expected=version, reply=f"r{version + 1}", message_id=f"m{version + 1}"))
    first = sessions.turns(TENANT, session.session_id, limit=2)
    second = sessions.turns(TENANT, session.session_id, limit=2, cursor=first.next_cursor)
    third = sessions.turns(TENANT, session.session_id, limit=2, cursor=second.next_cursor)
    assert [[r.reply for r in page.items] for page in (first, second, third)] == [
        ["r1", "r2"],
        ["r3", "r4"],
        ["r5"],
    ]
    assert third.next_cursor is None
    assert [r.turn_number for r in sessions.turns(TENANT, session.session_id).items] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "eyJzayI6ICJTRVNTSU9OIn0="])  # the second names SESSION
def test_a_cursor_the_api_did_not_return_is_invalid_input(sessions: DynamoSessionStore, cursor: str) -> None:
    with pytest.raises(InvalidInput):
        sessions.turns(TENANT, "ses_x", cursor=cursor)
    with pytest.raises(InvalidInput):
        sessions.turns(TENANT, "ses_x", limit=0)


def test_messages_after_an_id_are_only_the_later_ones(sessions: DynamoSessionStore) -> None:
    session = sessions.open(KEY, "itl_1", NOW)
    sessions.commit(a_turn(session, expected=0, message_id="m1"))
    sessions.commit(a_turn(session, expected=1, message_id="m2"))
    ids = [m.message_id for m in sessions.messages(TENANT, session.session_id)]
    assert ids == ["m1", "m1-reply", "m2", "m2-reply"]
    assert [m.message_id for m in sessions.messages(TENANT, session.session_id, after="m1-reply")] == [
        "m2",
        "m2-reply",
    ]
    assert sessions.messages(TENANT, session.session_id, after="m2-reply") == []


def test_a_field_written_underneath_a_commit_is_superseded_not_lost(
    any_aws: Aws,
    sessions: DynamoSessionStore,
    interlocutors: DynamoInterlocutorStore,
) -> None:
    # GIVEN another writer that changes the field between the commit's read and its transaction
    interlocutor = interlocutors.resolve(TENANT, "api", "u1")
    session = sessions.open(KEY, interlocutor, NOW)
    other = DynamoInterlocutorStore(
        boto3.client("dynamodb", region_name="us-east-1", endpoint_url=any_aws.dynamodb.meta.endpoint_url),
        any_aws.table,
    )
    sneaked: list[bool] = []

    def sneak_in(**_: Any) -> None:
        if not sneaked:
            sneaked.append(True)
            other.write(TENANT, interlocutor, [FieldChange("email", "api@example.com", ValueSource.API)], NOW)

    any_aws.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", sneak_in)
    # WHEN the turn commits a new value of that field
    sessions.commit(a_turn(session, expected=0, changes=[FieldChange("email", "ada@example.com", ValueSource.USER)]))
    # THEN both versions are kept, the turn's on top, and the turn is committed once
    history = [(v.value, v.status) for v in interlocutors.history(TENANT, interlocutor)]
    assert history == [("api@example.com", ValueStatus.SUPERSEDED), ("ada@example.com", ValueStatus.ACTIVE)]
    assert [record.turn_number for record in sessions.turns(TENANT, session.session_id).items] == [1]


def test_an_unreachable_dynamodb_is_unavailable() -> None:
    sessions = DynamoSessionStore(dead_dynamodb(), "ruche-main")
    session = Session(session_id="ses_x", key=KEY, interlocutor_id="itl_1")
    with pytest.raises(Unavailable):
        sessions.open(KEY, "itl_1", NOW)
    with pytest.raises(Unavailable):
        sessions.save(session, expected_version=0)
    with pytest.raises(Unavailable):
        sessions.commit(a_turn(session, expected=0))
    with pytest.raises(Unavailable):
        sessions.commit(a_turn(session, expected=0, changes=[FieldChange("email", "a@b.co", ValueSource.USER)]))
    with pytest.raises(Unavailable):
        sessions.turns(TENANT, "ses_x")
    with pytest.raises(Unavailable):
        sessions.messages(TENANT, "ses_x")


# --- answering inbox messages (stores/inbox_items.py) ---------------------------------------------

def answering(turn: TurnCommit, *message_ids: str) -> TurnCommit:
    return TurnCommit(session=turn.session, expected_version=turn.expected_version, record=turn.record,
                      transcript=turn.transcript, now_s=turn.now_s, answered=message_ids)


def test_a_commit_takes_the_messages_it_answers_out_of_the_inbox(any_aws: Aws, sessions: DynamoSessionStore) -> None:
    from chalicelib.stores.inbox import SessionInbox

    inbox = SessionInbox(any_aws.dynamodb, any_aws.table)
    for index, text in enumerate(("hello", "are you there?", "one more")):
        inbox.append(KEY, f"m{index + 1}", text, NOW + index)
    session = sessions.open(KEY, "itl_1", NOW)
    turn = answering(a_turn(session, expected=0), "m1", "m2")
    sessions.commit(turn)
    assert [message.message_id for message in inbox.pending(KEY)] == ["m3"]
    assert sessions.committed_turn(KEY, turn.record.turn_id) is not None
    assert sessions.reply_of(TENANT, session.session_id, 1) == "hi"


def test_a_turn_whose_messages_were_answered_already_commits_nothing(any_aws: Aws,
                                                                     sessions: DynamoSessionStore) -> None:
    from chalicelib.stores.inbox import SessionInbox

    inbox = SessionInbox(any_aws.dynamodb, any_aws.table)
    inbox.append(KEY, "m1", "hello", NOW)
    session = sessions.open(KEY, "itl_1", NOW)
    sessions.commit(answering(a_turn(session, expected=0, reply="first"), "m1"))
    # A redelivered record that read the session before the first commit tries again.
    duplicate = answering(a_turn(session, expected=0, reply="again"), "m1")
    duplicate = TurnCommit(session=duplicate.session, expected_version=0,
                           record=duplicate.record.model_copy(update={"turn_id": "turn_other"}),
                           transcript=duplicate.transcript, now_s=duplicate.now_s, answered=("m1",))
    with pytest.raises(StaleSession) as raised:
        sessions.commit(duplicate)
    assert raised.value.details["reason"] == "already_answered"
    assert [record.reply for record in sessions.turns(TENANT, session.session_id).items] == ["first"]


def test_a_turn_id_names_one_committed_turn(sessions: DynamoSessionStore) -> None:
    session = sessions.open(KEY, "itl_1", NOW)
    sessions.commit(a_turn(session, expected=0, reply="first"))
    moved_on = sessions.get(TENANT, session.session_id)
    assert moved_on is not None
    reused = a_turn(moved_on, expected=1, reply="second")
    reused = TurnCommit(session=reused.session, expected_version=1,
                        record=reused.record.model_copy(update={"turn_id": "turn_1"}),  # the first turn's id
                        transcript=reused.transcript, now_s=reused.now_s)
    with pytest.raises(StaleSession):
        sessions.commit(reused)
    assert [record.turn_id for record in sessions.turns(TENANT, session.session_id).items] == ["turn_1"]
    assert sessions.committed_turn(KEY, "turn_2") is None
