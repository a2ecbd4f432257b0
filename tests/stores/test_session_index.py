"""The session index: written by the turn's commit, read newest first by one Query (moto, both ways)."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.session import SessionKey
from chalicelib.domain.turn import Outcome, ScenarioPosition, TurnCommit, TurnRecord
from chalicelib.stores.dynamo_sessions import DynamoSessionStore
from chalicelib.stores.ports import SessionFilter
from chalicelib.stores.session_index import DynamoSessionIndex
from tests.conftest import Aws

TENANT = "acme"
NOW = 1_800_000_000.0


@pytest.fixture
def stores(any_aws: Aws) -> tuple[DynamoSessionStore, DynamoSessionIndex]:
    return DynamoSessionStore(any_aws.dynamodb, any_aws.table), DynamoSessionIndex(any_aws.dynamodb, any_aws.table)


def commit_turn(store: DynamoSessionStore, key: SessionKey, now_s: float, outcome: Outcome | None = None,
                session_id: str | None = None) -> str:
    session = store.open(key, "itl_1", now_s) if session_id is None else store.get(TENANT, session_id)
    assert session is not None
    number = session.turn_count + 1
    record = TurnRecord(turn_id=f"turn_{number}", session_id=session.session_id, tenant_id=TENANT,
                        agent_id=key.agent_id, agent_version=1, interlocutor_id="itl_1", turn_number=number,
                        channel=key.channel, message="hi", reply="hello", outcome=outcome or Outcome(),
                        created_at=f"2027-01-15T08:00:{number:02d}Z")
    store.commit(TurnCommit(session=session.model_copy(update={"version": session.version + 1, "turn_count": number}),
                            expected_version=session.version, record=record, now_s=now_s))
    return session.session_id


def test_a_phone_channels_user_id_is_listed_as_its_mask(stores: tuple[DynamoSessionStore, DynamoSessionIndex]) -> None:
    store, index = stores
    commit_turn(store, SessionKey(tenant_id=TENANT, agent_id="a", channel="twilio", user_id="+15551234567"), NOW)
    commit_turn(store, SessionKey(tenant_id=TENANT, agent_id="a", channel="slack", user_id="U024BE7LH"), NOW + 1)
    rows = index.list(TENANT, "a", limit=10).items
    assert [(row.channel, row.user_id) for row in rows] == [("slack", "U024BE7LH"), ("twilio", "‹phone›")]


def test_each_commit_counts_its_turn_fallback_handoff_and_scenario(
        stores: tuple[DynamoSessionStore, DynamoSessionIndex]) -> None:
    store, index = stores
    key = SessionKey(tenant_id=TENANT, agent_id="a", channel="api", user_id="u1")
    session_id = commit_turn(store, key, NOW, Outcome(fallback_used=True))
    commit_turn(store, key, NOW + 1, Outcome(scenario=ScenarioPosition(id="returns", step="ask")), session_id)
    commit_turn(store, key, NOW + 2, Outcome(fallback_used=True, handoff=True), session_id)
    [row] = index.list(TENANT, "a", limit=10).items
    assert (row.turns, row.fallbacks, row.handoff, row.scenario_id) == (3, 2, True, "returns")
    assert row.last_turn_at == "2027-01-15T08:00:03Z"
    assert index.list(TENANT, "a", limit=10, where=SessionFilter(scenario="returns")).items == [row]
    assert index.list(TENANT, "a", limit=10, where=SessionFilter(scenario="billing")).items == []
    assert index.list(TENANT, "b", limit=10).items == []  # another agent's partition


def test_a_cursor_for_another_list_is_refused(stores: tuple[DynamoSessionStore, DynamoSessionIndex]) -> None:
    _, index = stores
    with pytest.raises(InvalidInput):
        index.list(TENANT, "a", limit=10, cursor="eyJzayI6ICJUVVJOIzAwMDAwMDAxIn0")  # a turn-records cursor
