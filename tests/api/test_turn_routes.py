"""The turn route and the session routes: audit trail and transcript, tenancy, validation."""

from __future__ import annotations

from tests.api.harness import Api, a_bundle, error_of, paths_of


def started(api: Api) -> tuple[str, dict[str, object]]:
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    response = api.call("POST", "/v1/agents/support/turns", key, {"user_id": "u1", "message": "hello there"})
    assert response.status_code == 200, response.body
    return key, response.json_body


def test_a_turn_answers_with_its_reply_and_outcome(api: Api) -> None:
    _, reply = started(api)
    assert set(reply) == {"turn_id", "session_id", "interlocutor_id", "reply", "outcome"}
    assert isinstance(reply["reply"], str) and reply["reply"]
    assert {"rules", "scenario", "regeneration_attempts", "fallback_used", "llm_calls", "handoff"} <= set(
        reply["outcome"]
    )  # type: ignore[arg-type]


def test_a_turn_body_is_validated_with_paths(api: Api) -> None:
    _, key = api.new_tenant()
    api.call("PUT", "/v1/agents/support", key, a_bundle())
    response = api.call("POST", "/v1/agents/support/turns", key, {"message": "", "channel": "fax", "x": 1})
    assert response.status_code == 422
    assert sorted(paths_of(response)) == ["channel", "message", "user_id", "x"]
    assert api.call("POST", "/v1/agents/support/turns", key, raw="{").status_code == 400


def test_turns_for_an_unknown_agent_or_another_tenants_session_are_404(api: Api) -> None:
    key, reply = started(api)
    _, other = api.new_tenant("other")
    api.call("PUT", "/v1/agents/support", other, a_bundle())
    assert (
        api.call("POST", "/v1/agents/nobody/turns", key, {"user_id": "u", "message": "hi"}).status_code == 404
    )
    foreign = api.call(
        "POST",
        "/v1/agents/support/turns",
        other,
        {"user_id": "u1", "message": "hi", "session_id": reply["session_id"]},
    )
    assert (foreign.status_code, error_of(foreign)["code"]) == (404, "not_found")


def test_the_session_turn_records_and_transcript_are_served_to_their_tenant_only(api: Api) -> None:
    key, reply = started(api)
    session_id = reply["session_id"]
    api.call(
        "POST",
        "/v1/agents/support/turns",
        key,
        {"user_id": "u1", "message": "again", "session_id": session_id},
    )
    turns = api.call("GET", f"/v1/agents/support/sessions/{session_id}/turns", key).json_body
    assert turns["turns"][0]["turn_id"] == reply["turn_id"]
    assert len(turns["turns"]) == 2 and turns["next_cursor"] is None
    first = api.call("GET", f"/v1/agents/support/sessions/{session_id}/turns?limit=1", key).json_body
    assert len(first["turns"]) == 1 and first["next_cursor"]
    messages = api.call("GET", f"/v1/agents/support/sessions/{session_id}/messages", key).json_body[
        "messages"
    ]
    assert [message["role"] for message in messages] == ["user", "agent", "user", "agent"]
    assert messages[0]["text"] == "hello there"
    after = api.call(
        "GET", f"/v1/agents/support/sessions/{session_id}/messages?after={messages[1]['message_id']}", key
    ).json_body["messages"]
    assert [message["text"] for message in after] == ["again", messages[3]["text"]]
    _, other = api.new_tenant("other")
    for suffix in ("turns", "messages"):
        assert api.call("GET", f"/v1/agents/support/sessions/{session_id}/{suffix}", other).status_code == 404
    api.call("PUT", "/v1/agents/second", key, a_bundle())
    assert api.call("GET", f"/v1/agents/second/sessions/{session_id}/turns", key).status_code == 404
