"""Contract of DynamoInterlocutorStore, against moto in-process and moto_server over HTTP."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Conflict, NotFound, Unavailable
from chalicelib.domain.interlocutor import FieldChange, ValueSource, ValueStatus
from chalicelib.domain.session import SessionKey
from chalicelib.domain.turn import TranscriptMessage, TurnCommit
from chalicelib.stores.dynamo_interlocutors import DynamoInterlocutorStore
from chalicelib.stores.dynamo_sessions import DynamoSessionStore
from tests.conftest import Aws
from tests.stores.test_dynamo_sessions import a_record, dead_dynamodb, isolate_calls, run_together

TENANT = "acme"
NOW = 1_800_000_000.0
DAY = 86_400.0


@pytest.fixture
def store(any_aws: Aws) -> DynamoInterlocutorStore:
    return DynamoInterlocutorStore(any_aws.dynamodb, any_aws.table)


def test_first_contact_creates_an_interlocutor_and_the_next_contact_finds_it(
    store: DynamoInterlocutorStore,
) -> None:
    first = store.resolve(TENANT, "twilio", "+15550001")
    assert store.resolve(TENANT, "twilio", "+15550001") == first
    assert store.resolve(TENANT, "twilio", "+15550002") != first
    assert store.resolve("other-tenant", "twilio", "+15550001") != first


def test_racing_first_contacts_create_exactly_one_interlocutor(any_aws: Aws, store: DynamoInterlocutorStore) -> None:
    isolate_calls(any_aws.dynamodb)
    ids = run_together(6, lambda _: store.resolve(TENANT, "slack", "U123"))
    assert len(set(ids)) == 1
    assert store.resolve(TENANT, "slack", "U123") == ids[0]


def test_a_linked_second_channel_maps_to_the_same_interlocutor(store: DynamoInterlocutorStore) -> None:
    interlocutor = store.resolve(TENANT, "twilio", "+15550001")
    store.link(TENANT, interlocutor, "webchat", "visitor-9")
    store.link(TENANT, interlocutor, "webchat", "visitor-9")  # linking again changes nothing
    assert store.resolve(TENANT, "webchat", "visitor-9") == interlocutor
    data = store.load(TENANT, interlocutor, NOW)
    assert data is not None
    assert {(i.channel, i.user_id) for i in data.identities} == {
        ("twilio", "+15550001"),
        ("webchat", "visitor-9"),
    }


def test_linking_an_identity_of_another_interlocutor_is_a_conflict(store: DynamoInterlocutorStore) -> None:
    mine = store.resolve(TENANT, "twilio", "+15550001")
    store.resolve(TENANT, "slack", "U9")
    with pytest.raises(Conflict):
        store.link(TENANT, mine, "slack", "U9")


def test_linking_to_an_unknown_interlocutor_is_not_found(store: DynamoInterlocutorStore) -> None:
    with pytest.raises(NotFound):
        store.link(TENANT, "itl_nobody", "slack", "U9")
    assert store.resolve(TENANT, "slack", "U9") != "itl_nobody"


def test_writing_a_value_supersedes_the_previous_one(store: DynamoInterlocutorStore) -> None:
    interlocutor = store.resolve(TENANT, "api", "u1")
    store.write(TENANT, interlocutor, [FieldChange("email", "old@example.com", ValueSource.USER)], NOW)
    store.write(
        TENANT,
        interlocutor,
        [
            FieldChange("email", "new@example.com", ValueSource.TOOL, 0.8),
            FieldChange("plan", "gold", ValueSource.API),
        ],
        NOW + 1,
    )
    data = store.load(TENANT, interlocutor, NOW + 2)
    assert data is not None
    assert data.values() == {"email": "new@example.com", "plan": "gold"}
    assert data.fields["email"].source is ValueSource.TOOL
    history = [(v.name, v.value, v.version, v.status) for v in store.history(TENANT, interlocutor)]
    assert history == [
        ("email", "old@example.com", 1, ValueStatus.SUPERSEDED),
        ("email", "new@example.com", 2, ValueStatus.ACTIVE),
        ("plan", "gold", 1, ValueStatus.ACTIVE),
    ]


def test_two_changes_of_one_field_in_one_write_keep_the_last(store: DynamoInterlocutorStore) -> None:
    interlocutor = store.resolve(TENANT, "api", "u1")
    store.write(
        TENANT,
        interlocutor,
        [FieldChange("city", "Lyon", ValueSource.USER), FieldChange("city", "Nice", ValueSource.USER)],
        NOW,
    )
    assert [(v.value, v.version) for v in store.history(TENANT, interlocutor)] == [("Nice", 1)]


def test_concurrent_writes_of_one_field_leave_one_active_value_and_a_full_history(
    any_aws: Aws,
    store: DynamoInterlocutorStore,
) -> None:
    isolate_calls(any_aws.dynamodb)
    interlocutor = store.resolve(TENANT, "api", "u1")
    writers = 5
    run_together(
        writers,
        lambda i: store.write(
            TENANT, interlocutor, [FieldChange("email", f"w{i}@example.com", ValueSource.USER)], NOW + i
        ),
    )
    history = store.history(TENANT, interlocutor, now_s=NOW + 10)
    assert [value.version for value in history] == list(range(1, writers + 1))
    active = [value for value in history if value.status is ValueStatus.ACTIVE]
    assert len(active) == 1 and active[0].version == writers
    assert {value.value for value in history} == {f"w{i}@example.com" for i in range(writers)}
    data = store.load(TENANT, interlocutor, NOW + 10)
    assert data is not None and data.values() == {"email": active[0].value}


def test_expired_values_are_not_served_even_while_the_item_still_exists(
    store: DynamoInterlocutorStore,
) -> None:
    interlocutor = store.resolve(TENANT, "api", "u1")
    store.write(
        TENANT,
        interlocutor,
        [
            FieldChange("otp", "123456", ValueSource.TOOL, ttl_days=1),
            FieldChange("name", "Ada", ValueSource.USER),
        ],
        NOW,
    )
    fresh = store.load(TENANT, interlocutor, NOW + DAY / 2)
    stale = store.load(TENANT, interlocutor, NOW + 2 * DAY)
    assert fresh is not None and fresh.values() == {"otp": "123456", "name": "Ada"}
    assert stale is not None and stale.values() == {"name": "Ada"}
    statuses = {v.name: v.status for v in store.history(TENANT, interlocutor, now_s=NOW + 2 * DAY)}
    assert statuses == {"otp": ValueStatus.EXPIRED, "name": ValueStatus.ACTIVE}


def test_unknown_interlocutor_loads_as_none_and_erases_as_false(store: DynamoInterlocutorStore) -> None:
    assert store.load(TENANT, "itl_nobody", NOW) is None
    assert store.erase(TENANT, "itl_nobody") is False
    store.write(TENANT, "itl_nobody", [], NOW)  # nothing to write: no item appears
    assert store.history(TENANT, "itl_nobody") == []


def test_erase_removes_values_identities_and_sessions_and_the_next_contact_is_someone_new(
    any_aws: Aws,
    store: DynamoInterlocutorStore,
) -> None:
    # GIVEN an interlocutor on two channels, with a value and a committed session
    interlocutor = store.resolve(TENANT, "twilio", "+15550001")
    store.link(TENANT, interlocutor, "webchat", "visitor-9")
    store.write(TENANT, interlocutor, [FieldChange("email", "ada@example.com", ValueSource.USER)], NOW)
    sessions = DynamoSessionStore(any_aws.dynamodb, any_aws.table)
    key = SessionKey(tenant_id=TENANT, agent_id="support", channel="twilio", user_id="+15550001")
    session = sessions.open(key, interlocutor, NOW)
    sessions.commit(
        TurnCommit(
            session=session.model_copy(update={"version": 1, "turn_count": 1}),
            expected_version=0,
            record=a_record(session, 1),
            transcript=[TranscriptMessage("m1", "user", "hello", "t")],
            now_s=NOW,
        )
    )
    # WHEN it is erased
    assert store.erase(TENANT, interlocutor) is True
    # THEN nothing of it is served, and the same people come back as new interlocutors
    assert store.load(TENANT, interlocutor, NOW) is None
    assert store.history(TENANT, interlocutor) == []
    assert sessions.get(TENANT, session.session_id) is None
    assert sessions.turns(TENANT, session.session_id).items == []
    assert sessions.messages(TENANT, session.session_id) == []
    again = store.resolve(TENANT, "twilio", "+15550001")
    assert again != interlocutor
    assert store.resolve(TENANT, "webchat", "visitor-9") not in (interlocutor, again)
    assert sessions.open(key, again, NOW).session_id != session.session_id


def test_an_unreachable_dynamodb_is_unavailable() -> None:
    store = DynamoInterlocutorStore(dead_dynamodb(), "ruche-main")
    with pytest.raises(Unavailable):
        store.resolve(TENANT, "api", "u1")
    with pytest.raises(Unavailable):
        store.link(TENANT, "itl_1", "api", "u2")
    with pytest.raises(Unavailable):
        store.load(TENANT, "itl_1", NOW)
    with pytest.raises(Unavailable):
        store.write(TENANT, "itl_1", [FieldChange("email", "a@b.co", ValueSource.USER)], NOW)
    with pytest.raises(Unavailable):
        store.erase(TENANT, "itl_1")
