"""The queue worker: logical turns per session from SQS FIFO records, partial batch failures."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain.session import SessionKey
from chalicelib.runtime.local_worker import lambda_event, poll_once
from chalicelib.runtime.queue_messages import TurnMessage, send_request
from chalicelib.runtime.queueing import send_record
from chalicelib.runtime.services import Services
from chalicelib.runtime.worker import handle_batch
from tests.api.harness import Api
from tests.support.chat_server import ChatServer

AGENT = "helpdesk"
BUNDLE: dict[str, Any] = {
    "agent": {"name": "Helpdesk", "config": {"enforcement": {"max_regeneration_attempts": 1}}},
    "templates": [{"id": "safe", "mode": "fallback", "text": "Someone will get back to you."}],
    "rules": [{"id": "greet", "condition": "the user says hello", "action": "Greet the user warmly."}],
}


class Queue:
    """What ingest does for each inbound message (inbox, then the FIFO queue), and the worker's side."""

    def __init__(self, api: Api) -> None:
        self.api, self.svc = api, api.services
        self.tenant_id, self.key = api.new_tenant()
        assert api.call("PUT", f"/v1/agents/{AGENT}", self.key, BUNDLE).status_code == 200
        self._sent = 0

    def session_key(self, user: str) -> SessionKey:
        return SessionKey(tenant_id=self.tenant_id, agent_id=AGENT, channel="twilio", user_id=user)

    def send(self, user: str, text: str, *, at: float | None = None) -> str:
        svc: Services = self.svc
        key = self.session_key(user)
        interlocutor = svc.interlocutors.resolve(self.tenant_id, "twilio", user)
        session = svc.sessions.open(key, interlocutor, time.time())
        self._sent += 1
        message_id = f"SM{self._sent:06d}"
        received_at = at or time.time()
        svc.inbox.append(key, message_id, text, received_at)
        send_record(svc, TurnMessage.of(key, message_id=message_id, text=text, received_at=received_at,
                                        session_id=session.session_id))
        return session.session_id

    def drain(self, rounds: int = 60) -> None:
        for _ in range(rounds):
            if poll_once(self.svc, wait_s=0) == 0:
                return

    def transcript(self, session_id: str) -> list[tuple[str, str]]:
        return [(message.role, message.text) for message in self.svc.sessions.messages(self.tenant_id, session_id)]

    def records(self, session_id: str) -> list[Any]:
        return list(self.svc.sessions.turns(self.tenant_id, session_id, limit=100).items)


@pytest.fixture
def queue(api: Api) -> Queue:
    return Queue(api)


def test_messages_waiting_together_are_answered_as_one_turn(queue: Queue) -> None:
    session_id = queue.send("+15550001", "hello")
    queue.send("+15550001", "are you there?")
    queue.drain()
    records = queue.records(session_id)
    assert len(records) == 1
    assert records[0].message == "hello\nare you there?"
    transcript = queue.svc.sessions.messages(queue.tenant_id, session_id)
    assert [(message.role, message.text) for message in transcript][:2] == [
        ("user", "hello"), ("user", "are you there?")]
    assert [message.message_id for message in transcript][:2] == ["SM000001", "SM000002"]
    assert transcript[2].role == "agent"


def test_order_is_kept_for_fifty_messages_over_five_sessions(queue: Queue) -> None:
    sessions = {}
    for index in range(50):
        user = f"+1555000{index % 5}"
        sessions[user] = queue.send(user, f"message {index // 5} from {user}")
    queue.drain()
    for user, session_id in sessions.items():
        said = "\n".join(text for role, text in queue.transcript(session_id) if role == "user").split("\n")
        assert said == [f"message {n} from {user}" for n in range(10)]
        assert all(record.reply for record in queue.records(session_id))


def test_a_crashing_message_fails_alone_and_the_rest_of_the_batch_succeeds(queue: Queue) -> None:
    good = queue.send("+15550009", "hello")
    queue.svc.sqs.send_message(QueueUrl=queue.svc.settings.turn_queue_url, MessageBody="{not json",
                               MessageGroupId="poison", MessageDeduplicationId="poison-1")
    received = queue.svc.sqs.receive_message(QueueUrl=queue.svc.settings.turn_queue_url, MaxNumberOfMessages=10,
                                             AttributeNames=["All"])["Messages"]
    event = lambda_event(received, "arn:aws:sqs:us-east-1:123456789012:ruche-test-turns.fifo")
    result = handle_batch(event, None, queue.svc)
    poison_id = next(m["MessageId"] for m in received if m["Body"] == "{not json")
    assert result["batchItemFailures"] == [{"itemIdentifier": poison_id}]
    assert len(queue.records(good)) == 1


def test_a_retried_record_never_runs_a_second_turn(queue: Queue) -> None:
    session_id = queue.send("+15550010", "hello")
    received = queue.svc.sqs.receive_message(QueueUrl=queue.svc.settings.turn_queue_url, MaxNumberOfMessages=10,
                                             AttributeNames=["All"])["Messages"]
    event = lambda_event(received, "arn:aws:sqs:us-east-1:123456789012:ruche-test-turns.fifo")
    for _ in range(3):  # Lambda may hand the same record again (a timeout after the commit)
        assert handle_batch(event, None, queue.svc) == {"batchItemFailures": []}
    assert len(queue.records(session_id)) == 1


def test_a_message_younger_than_the_accumulation_window_holds_its_session(queue: Queue) -> None:
    held = dict(BUNDLE, agent={"name": "Helpdesk", "config": {"session": {"accumulation_window_ms": 5000}}})
    assert queue.api.call("PUT", f"/v1/agents/{AGENT}", queue.key, held).status_code == 200
    session_id = queue.send("+15550011", "hello")
    received = queue.svc.sqs.receive_message(QueueUrl=queue.svc.settings.turn_queue_url, MaxNumberOfMessages=10,
                                             AttributeNames=["All"])["Messages"]
    event = lambda_event(received, "arn:aws:sqs:us-east-1:123456789012:ruche-test-turns.fifo")
    result = handle_batch(event, None, queue.svc)
    assert result["batchItemFailures"] == [{"itemIdentifier": received[0]["MessageId"]}]
    assert queue.records(session_id) == []
    # Once the window has passed (the held message is made older than it), the same record runs the turn.
    key = queue.session_key("+15550011")
    [held_message] = queue.svc.inbox.pending(key)
    queue.svc.inbox.discard(key, [held_message.message_id])
    queue.svc.inbox.append(key, held_message.message_id, held_message.text, time.time() - 10)
    assert handle_batch(event, None, queue.svc) == {"batchItemFailures": []}
    assert len(queue.records(session_id)) == 1


@pytest.fixture
def slow_model() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def test_a_message_arriving_during_a_turn_supersedes_its_reply(queue: Queue, slow_model: ChatServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a model slow enough for the user to write again while the first turn runs
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")
    from chalicelib.runtime.services import reset_services, services

    reset_services()
    queue.svc = services()
    assert queue.svc.secrets is not None
    queue.api.call("PUT", "/v1/secrets/k", queue.key, {"value": "sk"})
    config = {"llm": {"provider": "openai", "base_url": slow_model.base_url, "api_key_secret": "k",
                      "max_retries": 0, "timeout_s": 5}}
    assert queue.api.call("PUT", "/v1/config", queue.key, config).status_code == 200
    understood = {"intent": "", "language": "en", "values": {}, "applicable_rules": [], "scenario_signal": "none",
                  "scenario_id": None, "conditions_true": [], "confirmed": False}
    slow_model.reply_json(understood)
    slow_model.stall(1.0, "First answer.")
    slow_model.reply_json(understood)
    slow_model.reply("Answer to both.")
    session_id = queue.send("+15550012", "I need help")
    later = threading.Timer(0.4, lambda: queue.send("+15550012", "with my bill"))
    later.start()
    # WHEN the worker runs the first turn, then the next record
    queue.drain()
    later.join()
    queue.drain()
    # THEN the first reply was dropped and one turn answered both messages
    records = queue.records(session_id)
    assert [record.reply for record in records] == ["Answer to both."]
    assert records[0].message == "I need help\nwith my bill"


def test_with_redis_stopped_mid_run_no_message_is_lost(api: Api, redis_server: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.runtime.services import reset_services, services
    from tests.conftest import RedisServer

    assert isinstance(redis_server, RedisServer)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    reset_services()
    api.services = services()
    queue = Queue(api)
    first = queue.send("+15550020", "hello")
    queue.drain()
    redis_server.stop()
    try:
        # Redis is down: inbox, locks and dedupe fall back to DynamoDB, and the turn still runs.
        second = queue.send("+15550020", "are you still there?")
        queue.drain()
        assert second == first
        assert [record.message for record in queue.records(first)] == ["hello", "are you still there?"]
    finally:
        redis_server.start()


def test_a_poison_message_lands_in_the_dead_letter_queue_after_the_configured_receives(queue: Queue) -> None:
    sqs, url = queue.svc.sqs, queue.svc.settings.turn_queue_url
    sqs.send_message(QueueUrl=url, MessageBody="{not json", MessageGroupId="poison", MessageDeduplicationId="p-1")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})  # retry at once
    max_receives = 5  # infra/template.yaml MaxReceiveCount
    for _ in range(max_receives):  # the record fails each time and is left on the queue
        assert poll_once(queue.svc, wait_s=0) == 1
    assert poll_once(queue.svc, wait_s=0) == 0
    dead = sqs.receive_message(QueueUrl=queue.svc.settings.turn_queue_url.replace("turns.fifo", "turns-dlq.fifo"))
    assert [message["Body"] for message in dead.get("Messages", [])] == ["{not json"]


def test_an_async_api_turn_answers_202_and_runs_from_the_queue(queue: Queue) -> None:
    response = queue.api.call("POST", f"/v1/agents/{AGENT}/turns?async=true", queue.key,
                              {"user_id": "api-user", "message": "hello there"})
    assert response.status_code == 202, response.body
    queued = response.json_body
    assert queue.records(queued["session_id"]) == []  # nothing ran yet
    queue.drain()
    [record] = queue.records(queued["session_id"])
    assert record.turn_id == queued["turn_id"]
    assert record.message == "hello there" and record.reply


def receive_all(queue: Queue) -> list[dict[str, Any]]:
    return list(queue.svc.sqs.receive_message(QueueUrl=queue.svc.settings.turn_queue_url, MaxNumberOfMessages=10,
                                              AttributeNames=["All"]).get("Messages", []))


def fail_commits(svc: Services) -> Any:
    """Make every turn commit fail as a DynamoDB 500 would; returns a function that stops it."""
    from botocore.exceptions import ClientError

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "TransactWriteItems")

    svc.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", refuse)
    return lambda: svc.dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", refuse)


def test_a_failed_commit_leaves_the_messages_pending_and_the_retry_answers_them(queue: Queue) -> None:
    # GIVEN two messages waiting and a DynamoDB that refuses the commit
    session_id = queue.send("+15550030", "hello")
    queue.send("+15550030", "anyone?")
    event = lambda_event(receive_all(queue), "arn:aws:sqs:us-east-1:123456789012:ruche-test-turns.fifo")
    stop_failing = fail_commits(queue.svc)
    result = handle_batch(event, None, queue.svc)
    # THEN both records fail (the second is never started after the first), nothing is lost
    assert len(result["batchItemFailures"]) == 2
    assert [m.text for m in queue.svc.inbox.pending(queue.session_key("+15550030"))] == ["hello", "anyone?"]
    assert queue.records(session_id) == []
    # WHEN DynamoDB is back and SQS hands the records out again
    stop_failing()
    assert handle_batch(event, None, queue.svc) == {"batchItemFailures": []}
    # THEN one turn answered both, once
    [record] = queue.records(session_id)
    assert record.message == "hello\nanyone?"
    assert queue.svc.inbox.pending(queue.session_key("+15550030")) == []


def test_a_record_redelivered_after_its_commit_commits_nothing(queue: Queue) -> None:
    # GIVEN a turn committed for the first message, whose record was never deleted (a crash)
    session_id = queue.send("+15550031", "hello")
    received = receive_all(queue)
    first = lambda_event(received, "arn:aws:sqs:us-east-1:123456789012:ruche-test-turns.fifo")
    assert handle_batch(first, None, queue.svc) == {"batchItemFailures": []}
    # AND a newer message waiting
    queue.send("+15550031", "a newer question")
    # WHEN the old record comes back
    assert handle_batch(first, None, queue.svc) == {"batchItemFailures": []}
    # THEN it answered nothing: the newer message waits for its own record, and gets its own turn id
    assert [record.message for record in queue.records(session_id)] == ["hello"]
    queue.svc.sqs.delete_message(QueueUrl=queue.svc.settings.turn_queue_url,
                                 ReceiptHandle=received[0]["ReceiptHandle"])  # as the poller does now
    queue.drain()
    records = queue.records(session_id)
    assert [record.message for record in records] == ["hello", "a newer question"]
    assert len({record.turn_id for record in records}) == 2


def test_a_backlog_longer_than_one_turn_is_answered_oldest_first_over_several_turns(queue: Queue) -> None:
    from chalicelib.runtime.worker import MAX_MESSAGES_PER_TURN

    count = 2 * MAX_MESSAGES_PER_TURN + 5
    session_id = ""
    for index in range(count):
        session_id = queue.send("+15550032", f"line {index}")
    queue.drain(rounds=200)
    records = queue.records(session_id)
    assert [len(record.message.split("\n")) for record in records] == [MAX_MESSAGES_PER_TURN,
                                                                       MAX_MESSAGES_PER_TURN, 5]
    said = [text for role, text in queue.transcript(session_id) if role == "user"]
    assert said == [f"line {index}" for index in range(count)]
    assert all(record.reply for record in records)


def api_transcript(queue: Queue, session_id: str) -> list[dict[str, Any]]:
    """The transcript as a client reads it: every page of GET .../messages (50 a page by default)."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = f"?cursor={cursor}" if cursor else ""
        response = queue.api.call("GET", f"/v1/agents/{AGENT}/sessions/{session_id}/messages{query}", queue.key)
        assert response.status_code == 200, response.body
        found += response.json_body["messages"]
        cursor = response.json_body.get("next_cursor") or ""
        if not cursor:
            return found


def test_a_hundred_message_backlog_in_batches_of_ten_is_answered_in_full_oldest_first(queue: Queue) -> None:
    # The fault suite once reported messages 48-99 of such a backlog as never answered: it read
    # only the transcript's first page (50 items: 2 turns of 20 + replies, then 8). The worker
    # answers all of them; this pins that, and reads the transcript the way a client must.
    from chalicelib.runtime.worker import MAX_MESSAGES_PER_TURN

    # GIVEN 100 messages of one session, all pending before the worker starts
    count, user = 100, "+15550034"
    session_id = ""
    for index in range(count):
        session_id = queue.send(user, f"line {index:03d}")
    # WHEN the worker drains the queue 10 records a batch, as Lambda hands them out
    batches = []
    for _ in range(100):
        received = poll_once(queue.svc, wait_s=0)
        if received == 0:
            break
        batches.append(received)
    # THEN every message was answered, oldest first, 20 a turn, each turn with its reply
    assert max(batches) == 10 and sum(batches) >= count
    records = queue.records(session_id)
    assert [len(record.message.split("\n")) for record in records] == [MAX_MESSAGES_PER_TURN] * 5
    assert all(record.reply for record in records)
    transcript = api_transcript(queue, session_id)
    assert [m["text"] for m in transcript if m["role"] == "user"] == [f"line {index:03d}" for index in range(count)]
    assert sum(m["role"] == "agent" for m in transcript) == len(records)
    # AND nothing is left: the inbox is empty and no record waits in the queue
    assert queue.svc.inbox.pending(queue.session_key(user)) == []
    assert receive_all(queue) == []


def test_dead_lettered_messages_are_answered_once_after_a_replay(queue: Queue) -> None:
    # GIVEN a message whose commits keep failing until its record lands in the dead-letter queue
    sqs, url = queue.svc.sqs, queue.svc.settings.turn_queue_url
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})  # retry at once
    session_id = queue.send("+15550033", "please answer me")
    stop_failing = fail_commits(queue.svc)
    for _ in range(5):  # infra/template.yaml MaxReceiveCount
        assert poll_once(queue.svc, wait_s=0) == 1
    assert poll_once(queue.svc, wait_s=0) == 0
    stop_failing()
    assert queue.records(session_id) == []
    # WHEN the operator replays the dead-letter queue (twice, by mistake)
    response = queue.api.call("POST", "/v1/dead-letters/replay", "admin-secret-for-tests")
    assert response.status_code == 200, response.body
    assert response.json_body == {"replayed": 1, "more": False}
    assert queue.api.call("POST", "/v1/dead-letters/replay", "admin-secret-for-tests").json_body == {
        "replayed": 0, "more": False}
    queue.drain()
    # THEN the message was answered exactly once
    [record] = queue.records(session_id)
    assert record.message == "please answer me" and record.reply


def test_the_dead_letter_replay_needs_the_admin_key(queue: Queue) -> None:
    assert queue.api.call("POST", "/v1/dead-letters/replay", queue.key).status_code in {401, 403}


def test_a_record_queued_before_kind_was_written_is_still_answered_as_a_turn(queue: Queue) -> None:
    # GIVEN a record as the previous version queued it (no `kind`), still in the queue during a deploy
    key = queue.session_key("+15550040")
    session = queue.svc.sessions.open(key, queue.svc.interlocutors.resolve(queue.tenant_id, "twilio", "+15550040"),
                                      time.time())
    queue.svc.inbox.append(key, "SM-legacy", "hello", time.time())
    message = TurnMessage(tenant_id=queue.tenant_id, agent_id=AGENT, channel="twilio", user_id="+15550040",
                          message_id="SM-legacy", text="hello", session_id=session.session_id)
    request = send_request(queue.svc.settings.turn_queue_url, message)
    legacy = json.loads(request["MessageBody"])
    del legacy["kind"]
    queue.svc.sqs.send_message(**{**request, "MessageBody": json.dumps(legacy)})
    # WHEN the new worker reads it
    queue.drain()
    # THEN it is answered as the turn it always was
    [record] = queue.records(session.session_id)
    assert record.message == "hello" and record.reply


@pytest.mark.parametrize("body", ['{"kind": "nope", "text": "secret words"}',
                                  '{"kind": "turn", "text": "secret words"}',
                                  '{"kind": "event", "id": "evt_1", "text": "secret words"}',
                                  '["secret words"]'])
def test_a_body_that_is_no_queue_message_fails_its_record_and_is_logged_without_its_text(
        queue: Queue, body: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    queue.svc.sqs.send_message(QueueUrl=queue.svc.settings.turn_queue_url, MessageBody=body,
                               MessageGroupId="poison", MessageDeduplicationId="poison-1")
    received = receive_all(queue)
    result = handle_batch(lambda_event(received, "arn:aws:sqs:us-east-1:123456789012:ruche-test-turns.fifo"),
                          None, queue.svc)
    assert result["batchItemFailures"] == [{"itemIdentifier": received[0]["MessageId"]}]
    logs = capsys.readouterr()
    assert "turn record failed" in caplog.text and "ValidationError" in caplog.text
    assert "secret words" not in logs.out + logs.err + caplog.text


def test_a_replay_sends_a_message_back_in_its_production_group_and_poison_as_it_was(queue: Queue) -> None:
    from chalicelib.runtime.dead_letters import dead_letter_queue_url, replay_dead_letters

    sqs, url = queue.svc.sqs, queue.svc.settings.turn_queue_url
    dlq = dead_letter_queue_url(queue.svc)
    message = TurnMessage(tenant_id=queue.tenant_id, agent_id=AGENT, channel="twilio", user_id="+15550041",
                          message_id="SM-dead", text="hello")
    legacy = {key: value for key, value in json.loads(send_request(url, message)["MessageBody"]).items()
              if key != "kind"}  # queued by the previous version, then dead-lettered
    sqs.send_message(**{**send_request(dlq, message), "MessageBody": json.dumps(legacy)})
    sqs.send_message(QueueUrl=dlq, MessageBody="{not json", MessageGroupId="poison", MessageDeduplicationId="p-2")
    assert replay_dead_letters(queue.svc).replayed == 2
    back = {m["Attributes"]["MessageGroupId"]: m["Body"] for m in receive_all(queue) + receive_all(queue)}
    assert back["poison"] == "{not json"
    assert json.loads(back[send_request(url, message)["MessageGroupId"]])["kind"] == "turn"


def test_the_log_lines_of_a_queued_turn_name_its_tenant_agent_session_and_turn(
        queue: Queue, log_lines: io.StringIO) -> None:
    # GIVEN an async API turn queued, whose agent is then deleted before the worker reaches it
    queued = queue.api.call("POST", f"/v1/agents/{AGENT}/turns?async=true", queue.key,
                            {"user_id": "api-user", "message": "hello there"}).json_body
    assert queue.api.call("DELETE", f"/v1/agents/{AGENT}", queue.key).status_code in (200, 204)
    # WHEN the worker takes the record (it reads, finds no agent, and drops the message)
    queue.drain()
    # THEN that line, logged before any turn ran, still says whose turn it was
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    [dropped] = [line for line in lines if "no longer exists" in line.get("message", "")]
    assert dropped["tenant_id"] == queue.tenant_id and dropped["agent_id"] == AGENT
    assert dropped["session_id"] == queued["session_id"] and dropped["turn_id"] == queued["turn_id"]
