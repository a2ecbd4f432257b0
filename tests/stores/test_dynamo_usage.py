"""Usage counters in the turn commit: the month read with the turn's first batch, exact under a stale
commit, and unmatched-turn samples kept PII-scrubbed (stores/dynamo_usage.py)."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import StaleSession
from chalicelib.domain.session import SessionKey
from chalicelib.domain.turn import Attempt, Outcome, ScenarioTrace, TurnCommit, Violation
from chalicelib.domain.usage import DateRange, utc_day
from chalicelib.stores.dynamo_sessions import DynamoSessionStore
from chalicelib.stores.dynamo_turn_reads import DynamoTurnReads
from chalicelib.stores.dynamo_usage import DynamoUsageStore
from chalicelib.stores.metering import CallMeter
from tests.conftest import Aws
from tests.stores.test_dynamo_sessions import a_record

NOW = 1_800_000_000.0  # 2027-01-15
DAY = DateRange.parse(utc_day(NOW), utc_day(NOW))


def commit_turn(sessions: DynamoSessionStore, user: str, **record_fields: object) -> None:
    key = SessionKey(tenant_id="acme", agent_id="desk", channel="api", user_id=user)
    session = sessions.open(key, f"int_{user}", NOW)
    record = a_record(session, 1).model_copy(update={"turn_id": f"turn_{user}", **record_fields})
    sessions.commit(TurnCommit(session=session.model_copy(update={"turn_count": 1}), expected_version=0,
                               record=record, now_s=NOW))


def test_the_months_turns_and_tokens_come_with_the_first_batched_read(any_aws: Aws) -> None:
    sessions = DynamoSessionStore(any_aws.dynamodb, any_aws.table)
    for index in range(12):  # twelve sessions spread over the shards
        commit_turn(sessions, f"u{index}", prompt_tokens=100, completion_tokens=20)
    meter = CallMeter.attach(any_aws.dynamodb)
    start = DynamoTurnReads(any_aws.dynamodb, any_aws.table).start(
        SessionKey(tenant_id="acme", agent_id="desk", channel="api", user_id="u0"), now_s=NOW)
    assert meter.count == 1
    assert (start.month.turns, start.month.tokens) == (12, 1440)
    next_month = DynamoTurnReads(any_aws.dynamodb, any_aws.table).start(
        SessionKey(tenant_id="acme", agent_id="desk", channel="api", user_id="u0"), now_s=NOW + 31 * 86_400)
    assert (next_month.month.turns, next_month.month.tokens) == (0, 0)


def test_a_stale_commit_adds_nothing_to_the_counters(any_aws: Aws) -> None:
    sessions = DynamoSessionStore(any_aws.dynamodb, any_aws.table)
    key = SessionKey(tenant_id="acme", agent_id="desk", channel="api", user_id="u1")
    session = sessions.open(key, "int_1", NOW)
    turn = TurnCommit(session=session.model_copy(update={"turn_count": 1}), expected_version=0,
                      record=a_record(session, 1).model_copy(update={"llm_calls": 2}), now_s=NOW)
    sessions.commit(turn)
    with pytest.raises(StaleSession):
        sessions.commit(turn)  # the same turn again, from the version it already moved past
    [row] = DynamoUsageStore(any_aws.dynamodb, any_aws.table).days("acme", DAY)
    assert (row.counters["turns"], row.counters["llm_calls"]) == (1, 2)


def test_insight_counters_and_a_scrubbed_sample_of_an_unmatched_turn(any_aws: Aws) -> None:
    sessions = DynamoSessionStore(any_aws.dynamodb, any_aws.table)
    commit_turn(sessions, "u1", message="mail me at jo@example.com or call +33 6 12 34 56 78")
    commit_turn(sessions, "u2", outcome=Outcome(rules=["refunds"]), attempts=[
        Attempt(reply="a", violations=[Violation(rule_id="no_promises", message="m")]),
        Attempt(reply="b", violations=[Violation(rule_id="no_promises", message="m"),
                                       Violation(rule_id="polite", message="m")]),
        Attempt(reply="c")])
    commit_turn(sessions, "u3", scenario_trace=ScenarioTrace(action="start", scenario_id="returns",
                                                             to_step="check", path=["ask", "check"]))
    [row] = DynamoUsageStore(any_aws.dynamodb, any_aws.table).days("acme", DAY)
    assert row.counters["turns"] == 3
    assert row.insights == {"unmatched": 1, "applied:refunds": 1, "violated:no_promises": 2, "violated:polite": 1,
                            "entered:returns/ask": 1, "entered:returns/check": 1, "completed:returns/ask": 1}
    [sample] = row.samples
    assert sample.turn_id == "turn_u1"
    assert sample.message == "mail me at ‹email› or call ‹number›"
