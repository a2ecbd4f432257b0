"""Outbound events: endpoints per tenant, queued after a turn, POSTed signed by the worker, retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.domain.event import EventType
from chalicelib.runtime.events import ENDPOINTS, backoff_s, emit_event, sign
from chalicelib.runtime.local_worker import lambda_event, poll_once
from chalicelib.runtime.queue_messages import is_event_message
from chalicelib.runtime.services import reset_services, services
from chalicelib.runtime.worker import handle_batch
from tests.api.harness import Api, error_of, paths_of
from tests.runtime.test_lifecycle import desk_bundle

SECRET = "whsec-0123456789abcdef"


@dataclass
class Receiver:
    """A real HTTP server that records the events POSTed to it and answers `status`."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def local_api(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The app with private addresses allowed (the receiver listens on 127.0.0.1)."""
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "1")
    reset_services()
    return Api(client=api.client, services=services())


def tenant(api: Api) -> tuple[str, str]:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/desk", key, desk_bundle()).status_code == 200
    return tenant_id, key


def register(api: Api, key: str, url: str, events: list[str], endpoint_id: str = "main") -> Any:
    return api.call("PUT", f"/v1/event-endpoints/{endpoint_id}", key, {"url": url, "events": events, "secret": SECRET})


def drain(api: Api) -> None:
    for _ in range(10):
        if poll_once(api.services, wait_s=0) == 0:
            return


def test_an_endpoint_is_stored_per_tenant_and_never_shows_its_secret(local_api: Api, receiver: Receiver) -> None:
    _, key = tenant(local_api)
    put = register(local_api, key, receiver.url, ["turn_completed", "handoff", "handoff"])
    assert put.status_code == 200
    assert put.json_body["events"] == ["turn_completed", "handoff"]
    one = local_api.call("GET", "/v1/event-endpoints/main", key)
    listed = local_api.call("GET", "/v1/event-endpoints", key).json_body
    for shown in (put.body, one.body, json.dumps(listed)):
        assert SECRET not in (shown.decode() if isinstance(shown, bytes) else str(shown))
    assert one.json_body["url"] == receiver.url and one.json_body["last_failure"] is None
    assert [item["endpoint_id"] for item in listed["event_endpoints"]] == ["main"]
    _, other = tenant(local_api)
    assert local_api.call("GET", "/v1/event-endpoints/main", other).status_code == 404
    assert local_api.call("DELETE", "/v1/event-endpoints/main", other).status_code == 404
    assert local_api.call("DELETE", "/v1/event-endpoints/main", key).status_code == 204
    assert local_api.call("GET", "/v1/event-endpoints/main", key).status_code == 404


def test_a_bad_endpoint_is_422_with_every_path(api: Api) -> None:
    _, key = tenant(api)
    bad = api.call("PUT", "/v1/event-endpoints/main", key, {"url": "x", "events": ["nope"], "secret": "short"})
    assert bad.status_code == 422 and sorted(paths_of(bad)) == ["events[0]", "secret", "url"]
    both = api.call("PUT", "/v1/event-endpoints/main", key,
                    {"url": "http://169.254.169.254/latest", "events": ["handoff"], "secret": "short"})
    assert both.status_code == 422 and sorted(paths_of(both)) == ["secret", "url"]  # every problem at once
    private = register(api, key, "http://169.254.169.254/latest", ["handoff"])
    assert (private.status_code, paths_of(private)) == (422, ["url"])
    assert register(api, key, "http://10.0.0.1/", ["handoff"], endpoint_id="bad id!").status_code == 422


def test_a_turn_sends_signed_events_without_any_text(local_api: Api, receiver: Receiver) -> None:
    tenant_id, key = tenant(local_api)
    register(local_api, key, receiver.url, ["turn_completed", "handoff"])
    handed = local_api.call("POST", "/v1/agents/desk/turns", key,
                            {"user_id": "u1", "message": "I want to speak to a human person please"}).json_body
    drain(local_api)
    kinds = sorted(body["type"] for body in receiver.bodies())
    assert kinds == ["handoff", "turn_completed"]
    for headers, raw in receiver.received:
        expected = sign(SECRET, int(headers["x-ruche-timestamp"]), raw)
        assert hmac.compare_digest(headers["x-ruche-signature"], expected)
        assert expected == "v1=" + hmac.new(SECRET.encode(), headers["x-ruche-timestamp"].encode() + b"." + raw,
                                            hashlib.sha256).hexdigest()
        body = json.loads(raw)
        assert set(body) == {"id", "type", "created_at", "tenant_id", "data"}
        assert body["tenant_id"] == tenant_id and body["data"]["turn_id"] == handed["turn_id"]
        assert "speak to" not in raw.decode() and "take over" not in raw.decode()  # no message or reply text
    shown = local_api.call("GET", "/v1/event-endpoints/main", key).json_body
    assert shown["last_delivered_at"] and shown["last_failure"] is None


def test_only_subscribed_events_are_sent(local_api: Api, receiver: Receiver) -> None:
    _, key = tenant(local_api)
    register(local_api, key, receiver.url, ["handoff"])
    local_api.call("POST", "/v1/agents/desk/turns", key, {"user_id": "u1", "message": "hello"})
    drain(local_api)
    assert receiver.received == []


def test_a_failed_delivery_is_recorded_backed_off_and_retried_until_it_succeeds(
    local_api: Api, receiver: Receiver
) -> None:
    _, key = tenant(local_api)
    register(local_api, key, receiver.url, ["turn_completed"])
    receiver.status = 500
    local_api.call("POST", "/v1/agents/desk/turns", key, {"user_id": "u1", "message": "hello"})
    svc = local_api.services
    received = svc.sqs.receive_message(QueueUrl=svc.settings.turn_queue_url, AttributeNames=["All"])["Messages"]
    arn = svc.sqs.get_queue_attributes(QueueUrl=svc.settings.turn_queue_url,
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    result = handle_batch(lambda_event(received, arn), None, svc)
    assert [item["itemIdentifier"] for item in result["batchItemFailures"]] == [received[0]["MessageId"]]
    failure = local_api.call("GET", "/v1/event-endpoints/main", key).json_body["last_failure"]
    assert (failure["status"], failure["attempts"]) == (500, 1)
    # THEN the message is hidden for the backoff (30 s): nothing to receive now
    assert svc.sqs.receive_message(QueueUrl=svc.settings.turn_queue_url, WaitTimeSeconds=0).get("Messages") is None
    # WHEN the backoff has passed and the endpoint is healthy again, the retry delivers the same event
    svc.sqs.change_message_visibility(QueueUrl=svc.settings.turn_queue_url,
                                      ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=0)
    receiver.status = 204
    drain(local_api)
    assert [body["type"] for body in receiver.bodies()] == ["turn_completed", "turn_completed"]
    assert receiver.bodies()[0]["id"] == receiver.bodies()[1]["id"]
    assert local_api.call("GET", "/v1/event-endpoints/main", key).json_body["last_delivered_at"]


def test_an_unreachable_endpoint_is_a_recorded_error(local_api: Api) -> None:
    _, key = tenant(local_api)
    register(local_api, key, "http://127.0.0.1:9/nothing", ["turn_completed"])
    local_api.call("POST", "/v1/agents/desk/turns", key, {"user_id": "u1", "message": "hello"})
    drain(local_api)
    failure = local_api.call("GET", "/v1/event-endpoints/main", key).json_body["last_failure"]
    assert failure["status"] is None and failure["error"].startswith("ConnectionError")


def test_events_of_a_deleted_endpoint_are_dropped(local_api: Api, receiver: Receiver) -> None:
    _, key = tenant(local_api)
    register(local_api, key, receiver.url, ["turn_completed"])
    local_api.call("POST", "/v1/agents/desk/turns", key, {"user_id": "u1", "message": "hello"})
    local_api.call("DELETE", "/v1/event-endpoints/main", key)
    drain(local_api)
    assert receiver.received == []


def test_a_delivery_failure_event_carries_ids_only(local_api: Api, receiver: Receiver) -> None:
    tenant_id, key = tenant(local_api)
    register(local_api, key, receiver.url, ["delivery_failed"])
    emit_event(local_api.services, tenant_id, "delivery_failed", {"turn_id": "turn_1", "error_code": "unavailable"})
    emit_event(local_api.services, tenant_id, "not_an_event", {})
    drain(local_api)
    assert [(body["type"], body["data"]) for body in receiver.bodies()] == [
        ("delivery_failed", {"turn_id": "turn_1", "error_code": "unavailable"})
    ]


def test_registering_elsewhere_is_seen_within_the_cache_time(local_api: Api, receiver: Receiver) -> None:
    tenant_id, key = tenant(local_api)
    emit_event(local_api.services, tenant_id, EventType.HANDOFF, {})  # caches "no endpoints"
    register(local_api, key, receiver.url, ["handoff"])  # this container forgets its cache at once
    emit_event(local_api.services, tenant_id, EventType.HANDOFF, {})
    drain(local_api)
    assert len(receiver.received) == 1
    assert ENDPOINTS.get(tenant_id) is not None


def test_backoff_doubles_up_to_fifteen_minutes_and_bodies_are_recognised() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 10)] == [30, 60, 120, 900]
    assert is_event_message('{"kind": "event"}') and not is_event_message('{"kind": "turn"}')
    assert not is_event_message("[1]") and not is_event_message("{")


def test_only_the_tenant_key_reaches_the_routes(api: Api) -> None:
    response = api.call("GET", "/v1/event-endpoints")
    assert (response.status_code, error_of(response)["code"]) == (401, "unauthorized")
