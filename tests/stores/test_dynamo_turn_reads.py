"""The batched reads of a warm turn agree with what the stores wrote, against both back ends."""

from __future__ import annotations

from chalicelib.domain.bundle import AgentBundle, AgentInfo, NewVersion
from chalicelib.domain.interlocutor import FieldChange, ValueSource
from chalicelib.domain.session import SessionKey
from chalicelib.domain.turn import TurnCommit
from chalicelib.stores.dynamo_bundles import DynamoBundleStore
from chalicelib.stores.dynamo_config import DynamoConfigStore
from chalicelib.stores.dynamo_interlocutors import DynamoInterlocutorStore
from chalicelib.stores.dynamo_sessions import DynamoSessionStore
from chalicelib.stores.dynamo_turn_reads import DynamoTurnReads
from chalicelib.stores.metering import CallMeter
from tests.conftest import Aws
from tests.stores.test_dynamo_sessions import a_record

NOW = 1_800_000_000.0
KEY = SessionKey(tenant_id="acme", agent_id="desk", channel="twilio", user_id="+15550001")


def test_a_first_contact_finds_the_agent_and_config_but_no_identity_or_session(any_aws: Aws) -> None:
    DynamoBundleStore(any_aws.dynamodb, any_aws.table).publish(
        "acme", "desk", NewVersion(AgentBundle(agent=AgentInfo(name="Desk")), vectors={}, embedding_model=""))
    DynamoConfigStore(any_aws.dynamodb, any_aws.table).put_tenant_layer("acme", {"llm": {"temperature": 0.1}})
    reads = DynamoTurnReads(any_aws.dynamodb, any_aws.table)
    start = reads.start(KEY)
    assert (start.latest_version, start.tenant_layer) == (1, {"llm": {"temperature": 0.1}})
    assert (start.interlocutor_id, start.session_id) == (None, None)
    assert reads.start(KEY.model_copy(update={"agent_id": "nobody"})).latest_version is None


def test_a_warm_turn_reads_its_session_and_live_values_in_two_round_trips(any_aws: Aws) -> None:
    interlocutors = DynamoInterlocutorStore(any_aws.dynamodb, any_aws.table)
    sessions = DynamoSessionStore(any_aws.dynamodb, any_aws.table)
    interlocutor = interlocutors.resolve("acme", "twilio", "+15550001")
    session = sessions.open(KEY, interlocutor, NOW)
    interlocutors.write("acme", interlocutor, [FieldChange("email", "a@example.com", ValueSource.API)], NOW)
    # A turn commit supersedes the email and adds a short-lived value.
    after = session.model_copy(update={"turn_count": 1})
    sessions.commit(TurnCommit(session=after, expected_version=0, record=a_record(session, 1), now_s=NOW,
                               field_changes=[FieldChange("email", "b@example.com", ValueSource.USER),
                                              FieldChange("otp", "1234", ValueSource.TOOL, ttl_days=1)],
                               field_heads={"email": 1}))
    reads = DynamoTurnReads(any_aws.dynamodb, any_aws.table)
    meter = CallMeter.attach(any_aws.dynamodb)
    start = reads.start(KEY)
    found, data = reads.session_and_data("acme", start.session_id or "", start.interlocutor_id or "", NOW + 60)
    assert meter.count == 2
    assert found is not None and found.session_id == session.session_id and found.version == 1
    assert data is not None
    assert {name: value.value for name, value in data.fields.items()} == {"email": "b@example.com", "otp": "1234"}
    assert data.fields["email"].version == 2
    # Expired values are never served, whatever TTL has not deleted yet.
    _, later = reads.session_and_data("acme", session.session_id, interlocutor, NOW + 2 * 86_400)
    assert later is not None and set(later.fields) == {"email"}


def test_a_stale_guess_of_the_field_versions_costs_a_retry_not_a_lost_value(any_aws: Aws) -> None:
    interlocutors = DynamoInterlocutorStore(any_aws.dynamodb, any_aws.table)
    sessions = DynamoSessionStore(any_aws.dynamodb, any_aws.table)
    interlocutor = interlocutors.resolve("acme", "twilio", "+15550001")
    session = sessions.open(KEY, interlocutor, NOW)
    interlocutors.write("acme", interlocutor, [FieldChange("email", "a@example.com", ValueSource.API)], NOW)
    interlocutors.write("acme", interlocutor, [FieldChange("email", "c@example.com", ValueSource.API)], NOW)
    sessions.commit(TurnCommit(session=session.model_copy(update={"turn_count": 1}), expected_version=0,
                               record=a_record(session, 1), now_s=NOW, field_heads={"email": 1},
                               field_changes=[FieldChange("email", "b@example.com", ValueSource.USER)]))
    history = interlocutors.history("acme", interlocutor, NOW)
    assert [(value.version, value.value, value.status.value) for value in history] == [
        (1, "a@example.com", "superseded"), (2, "c@example.com", "superseded"), (3, "b@example.com", "active")]
