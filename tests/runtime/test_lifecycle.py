"""Session lifecycle: handoff silence until resume, end, idle timeout -> a new session."""

from __future__ import annotations

from typing import Any

from chalicelib.api.auth import authenticate
from chalicelib.domain.session import SessionStatus
from tests.api.harness import Api, error_of

AGENT = "/v1/agents/desk"


def desk_bundle(idle_timeout_s: int | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {} if idle_timeout_s is None else {"session": {"idle_timeout_s": idle_timeout_s}}
    return {
        "agent": {"name": "Desk", "config": config},
        "templates": [
            {"id": "hours", "mode": "exclusive", "text": "We are open 9am to 5pm."},
            {"id": "colleague", "mode": "exclusive", "text": "A colleague will take over now."},
        ],
        "rules": [
            {"id": "opening_hours", "condition": "the user asks about opening hours",
             "action": "give the opening hours", "templates": ["hours"]},
            {"id": "human_request", "condition": "the user asks to speak to a human person",
             "action": "say a colleague takes over", "templates": ["colleague"], "handoff": True},
        ],
    }


def desk(api: Api, idle_timeout_s: int | None = None) -> str:
    _, key = api.new_tenant()
    assert api.call("PUT", AGENT, key, desk_bundle(idle_timeout_s)).status_code == 200
    return key


def say(api: Api, key: str, message: str, session_id: str | None = None, user_id: str = "u1") -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user_id, "message": message}
    if session_id is not None:
        body["session_id"] = session_id
    response = api.call("POST", f"{AGENT}/turns", key, body)
    assert response.status_code == 200, response.body
    answer: dict[str, Any] = response.json_body
    return answer


def test_after_a_handoff_the_agent_is_silent_until_the_session_is_resumed(api: Api) -> None:
    key = desk(api)
    handed = say(api, key, "I want to speak to a human person please")
    assert handed["outcome"]["handoff"] is True
    session_id = handed["session_id"]

    silent = say(api, key, "when are your opening hours?")
    assert (silent["reply"], silent["outcome"]["handoff"], silent["session_id"]) == (None, True, session_id)

    resumed = api.call("POST", f"{AGENT}/sessions/{session_id}/resume", key)
    assert resumed.status_code == 200
    assert resumed.json_body == {"session_id": session_id, "status": "active"}
    back = say(api, key, "when are your opening hours?")
    assert back["session_id"] == session_id
    assert back["reply"] == "We are open 9am to 5pm." and back["outcome"]["handoff"] is False


def test_resuming_an_active_session_changes_nothing(api: Api) -> None:
    key = desk(api)
    first = say(api, key, "when are your opening hours?")
    response = api.call("POST", f"{AGENT}/sessions/{first['session_id']}/resume", key)
    assert response.json_body["status"] == "active"
    assert say(api, key, "hello")["session_id"] == first["session_id"]


def test_an_ended_session_is_not_continued_the_next_turn_opens_a_new_one(api: Api) -> None:
    key = desk(api)
    first = say(api, key, "when are your opening hours?")
    ended = api.call("POST", f"{AGENT}/sessions/{first['session_id']}/end", key)
    assert ended.json_body == {"session_id": first["session_id"], "status": "ended"}
    assert api.call("POST", f"{AGENT}/sessions/{first['session_id']}/end", key).status_code == 200  # twice: no-op
    second = say(api, key, "when are your opening hours?")
    assert second["session_id"] != first["session_id"]
    assert second["interlocutor_id"] == first["interlocutor_id"]
    resume = api.call("POST", f"{AGENT}/sessions/{first['session_id']}/resume", key)
    assert (resume.status_code, error_of(resume)["code"]) == (409, "conflict")
    named = api.call("POST", f"{AGENT}/turns", key,
                     {"user_id": "u1", "message": "hi", "session_id": first["session_id"]})
    assert (named.status_code, error_of(named)["code"]) == (409, "conflict")


def test_lifecycle_routes_answer_404_for_unknown_or_foreign_sessions(api: Api) -> None:
    key = desk(api)
    session_id = say(api, key, "hello")["session_id"]
    other = desk(api)
    for action in ("resume", "end"):
        assert api.call("POST", f"{AGENT}/sessions/nope/{action}", key).status_code == 404
        assert api.call("POST", f"{AGENT}/sessions/{session_id}/{action}", other).status_code == 404
    assert api.call("PUT", "/v1/agents/second", key, desk_bundle()).status_code == 200
    assert api.call("POST", f"/v1/agents/second/sessions/{session_id}/end", key).status_code == 404
    assert say(api, key, "hello")["session_id"] == session_id  # nothing above changed the session


def age(api: Api, key: str, session_id: str, seconds: float) -> None:
    """Make the session look idle for `seconds` (its last activity moved into the past)."""
    session = api.services.sessions.get(_tenant_of(api, key), session_id)
    assert session is not None
    older = session.model_copy(update={"last_activity_s": session.last_activity_s - seconds})
    api.services.sessions.save(older, expected_version=session.version)


def _tenant_of(api: Api, key: str) -> str:
    return authenticate({"authorization": f"Bearer {key}"}, api.services.tenants).tenant_id


def test_a_session_idle_longer_than_the_configured_timeout_is_replaced_by_a_new_one(api: Api) -> None:
    key = desk(api, idle_timeout_s=60)
    first = say(api, key, "hello")
    age(api, key, first["session_id"], 61)
    assert say(api, key, "hello again")["session_id"] != first["session_id"]


def test_a_session_idle_within_the_timeout_continues(api: Api) -> None:
    key = desk(api)  # default idle timeout: a day
    first = say(api, key, "hello")
    age(api, key, first["session_id"], 61)
    assert say(api, key, "hello again")["session_id"] == first["session_id"]
    session = api.services.sessions.get(_tenant_of(api, key), first["session_id"])
    assert session is not None and session.status is SessionStatus.ACTIVE
