"""A hostile tenant's slow turn does not hold another tenant's reply (DESIGN.md §7, runtime/batches.py).

Real parts: moto in-process, the app's routes, and an OpenAI-compatible stand-in server over HTTP
that answers tenant A's generation only after a long stall.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.runtime.local_worker import lambda_event
from chalicelib.runtime.services import reset_services, services
from chalicelib.runtime.worker import handle_batch
from tests.api.harness import Api
from tests.support.chat_server import ChatServer

AGENT = "helpdesk"
BUNDLE: dict[str, Any] = {
    "agent": {"name": "Helpdesk", "config": {"enforcement": {"max_regeneration_attempts": 0}}},
    "templates": [{"id": "safe", "mode": "fallback", "text": "Someone will get back to you."}],
    "rules": [{"id": "greet", "condition": "the user says hello", "action": "Greet the user warmly."}],
}
UNDERSTOOD = {"intent": "", "language": "en", "values": {}, "applicable_rules": [], "scenario_signal": "none",
              "scenario_id": None, "conditions_true": [], "confirmed": False}
STALL_S = 20.0
# DESIGN.md §7: another tenant's reply is delayed by at most 5 s beyond its own work; its own
# offline turn takes well under a second, so 8 s is a generous ceiling that a shared queue fails.
CEILING_S = 8.0


@pytest.fixture
def slow_model() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


@pytest.fixture
def private_api(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The stand-in model listens on 127.0.0.1: let tenants' LLM URLs reach it."""
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")
    reset_services()
    api.services = services()
    return api


def a_tenant_with_webchat(api: Api, name: str) -> tuple[str, str]:
    """(api key, binding id) of a new tenant with the helpdesk agent on a webchat binding."""
    _, key = api.new_tenant(name)
    assert api.call("PUT", f"/v1/agents/{AGENT}", key, BUNDLE).status_code == 200
    bound = api.call("POST", f"/v1/agents/{AGENT}/channels", key,
                     {"channel": "webchat", "secrets": {"token": f"{name}-token"}})
    assert bound.status_code == 201, bound.body
    return key, bound.json_body["binding_id"]


def post_webchat(api: Api, name: str, binding_id: str, text: str) -> dict[str, Any]:
    response = api.call("POST", f"/v1/webhooks/webchat/{binding_id}", f"{name}-token", {"message": text})
    assert response.status_code == 202, response.body
    body: dict[str, Any] = response.json_body
    return body


def test_a_slow_turn_of_one_tenant_does_not_delay_another_tenants_reply_in_the_same_batch(
        private_api: Api, slow_model: ChatServer) -> None:
    api = private_api
    # GIVEN tenant A whose model stalls, and tenant B on the offline provider
    key_a, binding_a = a_tenant_with_webchat(api, "hostile")
    api.call("PUT", "/v1/secrets/k", key_a, {"value": "sk"})
    config = {"llm": {"provider": "openai", "base_url": slow_model.base_url, "api_key_secret": "k",
                      "max_retries": 0, "timeout_s": STALL_S + 10}}
    assert api.call("PUT", "/v1/config", key_a, config).status_code == 200
    slow_model.reply_json(UNDERSTOOD)
    slow_model.stall(STALL_S, "Finally.")
    _, binding_b = a_tenant_with_webchat(api, "neighbour")
    post_webchat(api, "hostile", binding_a, "hello")
    visitor_b = post_webchat(api, "neighbour", binding_b, "hello")
    svc = api.services
    received = svc.sqs.receive_message(QueueUrl=svc.settings.turn_queue_url, MaxNumberOfMessages=10,
                                       AttributeNames=["All"])["Messages"]
    assert len(received) == 2  # one batch: A's record first, then B's
    event = lambda_event(received, "arn:aws:sqs:us-east-1:123456789012:ruche-test-turns.fifo")
    # WHEN the worker handles that batch
    started = time.monotonic()
    worker = threading.Thread(target=handle_batch, args=(event, None, svc))
    worker.start()
    answered_after = None
    while time.monotonic() - started < STALL_S:
        messages = svc.sessions.messages(visitor_b_tenant(api, binding_b), visitor_b["session_id"])
        if any(message.role == "agent" for message in messages):
            answered_after = time.monotonic() - started
            break
        time.sleep(0.1)
    worker.join(timeout=STALL_S + 30)
    # THEN B's reply was committed long before A's model answered
    assert answered_after is not None and answered_after < CEILING_S, answered_after


def visitor_b_tenant(api: Api, binding_id: str) -> str:
    binding = api.services.bindings.get(binding_id)
    assert binding is not None
    return binding.tenant_id


def test_a_turn_whose_model_stalls_ends_in_its_fallback_at_the_turn_deadline(
        private_api: Api, slow_model: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    api = private_api
    monkeypatch.setattr("chalicelib.runtime.execute.TURN_DEADLINE_S", 3.0)
    _, key = api.new_tenant("slow")
    assert api.call("PUT", f"/v1/agents/{AGENT}", key, BUNDLE).status_code == 200
    api.call("PUT", "/v1/secrets/k", key, {"value": "sk"})
    config = {"llm": {"provider": "openai", "base_url": slow_model.base_url, "api_key_secret": "k",
                      "max_retries": 2, "timeout_s": STALL_S}}
    assert api.call("PUT", "/v1/config", key, config).status_code == 200
    for _ in range(6):
        slow_model.stall(STALL_S, "too late")
    started = time.monotonic()
    response = api.call("POST", f"/v1/agents/{AGENT}/turns", key, {"user_id": "u1", "message": "hello"})
    took = time.monotonic() - started
    assert response.status_code == 200, response.body
    assert response.json_body["outcome"]["fallback_used"] is True
    assert response.json_body["reply"] == "Someone will get back to you."
    assert took < STALL_S / 2, took  # the stall would have taken STALL_S per attempt
