"""A turn that outlives its session lock: the lock is taken over, and the stale turn cannot commit.

The app runs in-process over moto, the model is the scripted HTTP server. The session lock is the
DynamoDB one with an injected clock, so the test expires a running turn's lock without waiting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chalicelib.runtime.gateway import LOCK_TTL_S
from chalicelib.runtime.services import Services, reset_services, services
from chalicelib.runtime.turns import TurnInput, TurnResult, run_sync
from chalicelib.stores.locks import DynamoSessionLock
from tests.api.harness import Api, error_of
from tests.runtime.test_turns_end_to_end import AGENT, returns_agent, understood
from tests.support.chat_server import Canned, ChatServer


@dataclass
class Clock:
    """Real time plus an offset the test moves forward (the lock's view of time only)."""

    offset_s: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


@dataclass
class Desk:
    api: Api
    model: ChatServer
    svc: Services
    tenant_id: str
    key: str
    clock: Clock


@pytest.fixture
def desk(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")  # the model listens on 127.0.0.1
    reset_services()
    svc = services()  # what the app's handlers use from now on
    clock = Clock()
    monkeypatch.setattr(svc, "session_lock", DynamoSessionLock(svc.dynamodb, svc.settings.table, clock=clock))
    with ChatServer() as model:
        tenant_id, key = api.new_tenant()
        assert api.call("PUT", "/v1/secrets/model-key", key, {"value": "sk-test"}).status_code in (200, 204)
        # A generous model timeout: the takeover runs while the first turn waits for its answer.
        config = {"llm": {"provider": "openai", "base_url": model.base_url, "api_key_secret": "model-key",
                          "max_retries": 0, "timeout_s": 60.0}}
        assert api.call("PUT", "/v1/config", key, config).status_code == 200
        assert api.call("PUT", f"/v1/agents/{AGENT}", key, returns_agent()).status_code == 200
        yield Desk(api, model, svc, tenant_id, key, clock)


def test_a_turn_whose_lock_was_taken_over_cannot_commit(desk: Desk) -> None:
    newer: list[TurnResult] = []

    def take_over() -> None:
        # Turn A is waiting for the model, holding the session lock. Its lock expires, and turn B
        # of the same user takes the lock (a higher fencing token), runs and commits.
        desk.clock.offset_s += LOCK_TTL_S + 1
        newer.append(run_sync(desk.svc, desk.tenant_id, AGENT, TurnInput(user_id="u1", message="B: a refund?")))

    desk.model.push(Canned(text=json.dumps(understood()), on_receipt=take_over))  # turn A understands...
    desk.model.reply_json(understood())  # ... meanwhile turn B runs whole
    desk.model.reply("B: your return request is noted.")
    desk.model.reply("A: your return request is noted.")  # ... and turn A generates its reply

    stale = desk.api.call("POST", f"/v1/agents/{AGENT}/turns", desk.key, {"user_id": "u1", "message": "A: a return?"})

    # Turn A's caller is told it did not go through; turn B answered.
    assert stale.status_code == 409, stale.body
    assert error_of(stale)["code"] == "stale_session"
    assert error_of(stale)["details"]["reason"] == "lock_taken_over"
    assert len(newer) == 1 and newer[0].reply == "B: your return request is noted."
    assert desk.model.pending == 0  # turn A did run to its commit
    # Nothing of turn A was written: the transcript and the turn records hold turn B only.
    session_path = f"/v1/agents/{AGENT}/sessions/{newer[0].session_id}"
    transcript = desk.api.call("GET", f"{session_path}/messages", desk.key).json_body["messages"]
    assert [(m["role"], m["text"]) for m in transcript] == [
        ("user", "B: a refund?"), ("agent", "B: your return request is noted.")]
    records = desk.api.call("GET", f"{session_path}/turns", desk.key).json_body["turns"]
    assert [record["turn_id"] for record in records] == [newer[0].turn_id]
    # The session goes on as usual: the user's retry commits on top of turn B.
    desk.model.reply_json(understood())
    desk.model.reply("A: noted, again.")
    retry = desk.api.call("POST", f"/v1/agents/{AGENT}/turns", desk.key, {"user_id": "u1", "message": "A: a return?"})
    assert retry.status_code == 200, retry.body
    assert retry.json_body["session_id"] == newer[0].session_id
    transcript = desk.api.call("GET", f"{session_path}/messages", desk.key).json_body["messages"]
    assert [m["text"] for m in transcript] == [
        "B: a refund?", "B: your return request is noted.", "A: a return?", "A: noted, again."]
