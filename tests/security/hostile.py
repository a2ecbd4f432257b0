"""Small helpers for playing the hostile tenant over the HTTP API (the in-process Chalice harness)."""

from __future__ import annotations

import time
from typing import Any

from tests.api.harness import Api

AGENT = "/v1/agents/hostile"


def publish(api: Api, key: str, bundle: dict[str, Any]) -> tuple[Any, float]:
    """(response, CPU seconds this process spent) of publishing `bundle` as agent `hostile`."""
    started = time.process_time()
    response = api.call("PUT", AGENT, key, bundle)
    return response, time.process_time() - started


def turn(api: Api, key: str, message: str, session_id: str | None = None) -> tuple[dict[str, Any], float]:
    """(answer body, CPU seconds this process spent on it) of one synchronous turn; fails the test on a
    non-200. CPU time, not wall time: the in-process turn is this process's only work during the call,
    and other processes on a busy CI box do not count against the ceilings."""
    body: dict[str, Any] = {"user_id": "mallory", "message": message}
    if session_id is not None:
        body["session_id"] = session_id
    started = time.process_time()
    response = api.call("POST", f"{AGENT}/turns", key, body)
    elapsed = time.process_time() - started
    assert response.status_code == 200, response.body
    answer: dict[str, Any] = response.json_body
    return answer, elapsed


def turn_records(api: Api, key: str, session_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"{AGENT}/sessions/{session_id}/turns", key)
    assert response.status_code == 200, response.body
    records: list[dict[str, Any]] = response.json_body["turns"]
    return records


def violation_messages(record: dict[str, Any]) -> list[str]:
    return [violation["message"] for attempt in record["attempts"] for violation in attempt["violations"]]


def a_hostile_bundle(*, rules: list[dict[str, Any]] | None = None, fields: list[dict[str, Any]] | None = None,
                     templates: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    """A bare agent with the given parts (nothing else to distract the pipeline)."""
    bundle: dict[str, Any] = {
        "agent": {"name": "Hostile"},
        "fields": fields or [],
        "rules": rules or [],
        "templates": templates or [{"id": "hello", "mode": "exclusive", "text": "Hello there."}],
    }
    bundle.update(more)
    return bundle


def a_hard_constraint(expression: str, rule_id: str = "bomb") -> dict[str, Any]:
    return {"id": rule_id, "condition": "any message", "action": "keep the reply safe",
            "hard_constraint": True, "expression": expression}
