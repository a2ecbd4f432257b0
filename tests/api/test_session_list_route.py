"""GET /v1/agents/{id}/sessions: an agent's sessions newest first, paged, filtered, tenant-scoped."""

from __future__ import annotations

from typing import Any

from tests.api.harness import Api, error_of, paths_of

AGENT = "desk"


def desk_bundle() -> dict[str, Any]:
    """An agent whose offline draft for a delivery question breaks its own hard constraint."""
    return {
        "agent": {"name": "Desk"},
        "fields": [{"name": "order_id", "type": "string", "pattern": "A[0-9]{5}", "scope": "session"}],
        "templates": [{"id": "safe", "mode": "fallback", "text": "A colleague will get back to you."},
                      {"id": "promise", "mode": "suggest", "text": "We guarantee delivery tomorrow."}],
        "rules": [
            {"id": "delivery_promise", "condition": "the customer asks when the delivery arrives",
             "action": "tell the customer that we guarantee delivery tomorrow", "templates": ["promise"]},
            {"id": "no_guarantees", "condition": "any reply", "action": "never guarantee anything",
             "hard_constraint": True, "expression": 'not contains(reply, "guarantee")'},
            {"id": "human", "condition": "the customer asks to speak to a human person",
             "action": "tell the customer a colleague will take over", "handoff": True},
        ],
        "scenarios": [{"id": "returns", "condition": "the customer wants to return an item", "entry_step": "ask",
                       "steps": [{"id": "ask", "required_fields": ["order_id"]}]}],
    }


def a_desk(api: Api) -> str:
    _, key = api.new_tenant()
    assert api.call("PUT", f"/v1/agents/{AGENT}", key, desk_bundle()).status_code == 200
    return key


def turn(api: Api, key: str, user_id: str, message: str, session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user_id, "message": message}
    if session_id:
        body["session_id"] = session_id
    response = api.call("POST", f"/v1/agents/{AGENT}/turns", key, body)
    assert response.status_code == 200, response.body
    answer: dict[str, Any] = response.json_body
    return answer


def listed(api: Api, key: str, query: str = "") -> dict[str, Any]:
    response = api.call("GET", f"/v1/agents/{AGENT}/sessions{query}", key)
    assert response.status_code == 200, response.body
    answer: dict[str, Any] = response.json_body
    return answer


def test_sessions_are_listed_newest_first_with_their_turn_counts(api: Api) -> None:
    key = a_desk(api)
    first = turn(api, key, "ana", "hello")["session_id"]
    turn(api, key, "ana", "hello again", first)
    second = turn(api, key, "bob", "hello")["session_id"]
    sessions = listed(api, key)["sessions"]
    assert [s["session_id"] for s in sessions] == [second, first]
    assert [s["turns"] for s in sessions] == [1, 2]
    assert sessions[1]["user_id"] == "ana" and sessions[1]["channel"] == "api"
    assert sessions[1]["started_at"] <= sessions[1]["last_turn_at"]


def test_the_list_pages_with_a_cursor_without_repeating_or_skipping(api: Api) -> None:
    key = a_desk(api)
    started = [turn(api, key, f"user{n}", "hello")["session_id"] for n in range(5)]
    seen: list[str] = []
    page = listed(api, key, "?limit=2")
    while True:
        assert len(page["sessions"]) <= 2
        seen += [s["session_id"] for s in page["sessions"]]
        if page["next_cursor"] is None:
            break
        page = listed(api, key, f"?limit=2&cursor={page['next_cursor']}")
    assert seen == list(reversed(started))


def test_sessions_are_filtered_by_fallback_handoff_and_scenario(api: Api) -> None:
    key = a_desk(api)
    plain = turn(api, key, "ana", "hello")["session_id"]
    answer = turn(api, key, "bob", "when does the delivery arrive?")
    assert answer["outcome"]["fallback_used"] is True
    fell_back = answer["session_id"]
    answer = turn(api, key, "cid", "I want to speak to a human person")
    assert answer["outcome"]["handoff"] is True
    handed = answer["session_id"]
    answer = turn(api, key, "dan", "I want to return an item")
    assert answer["outcome"]["scenario"] == {"id": "returns", "step": "ask"}
    returning = answer["session_id"]

    def ids(query: str) -> list[str]:
        return [s["session_id"] for s in listed(api, key, query)["sessions"]]

    assert ids("?fallback=true") == [fell_back]
    assert ids("?handoff=true") == [handed]
    assert ids("?scenario=returns") == [returning]
    assert ids("?fallback=false&handoff=false") == [returning, plain]
    row = listed(api, key, "?fallback=true")["sessions"][0]
    assert (row["fallbacks"], row["handoff"]) == (1, False)
    assert listed(api, key, "?scenario=returns")["sessions"][0]["scenario_id"] == "returns"


def test_a_filtered_page_is_filled_past_the_rows_the_filter_skips(api: Api) -> None:
    key = a_desk(api)
    wanted = [turn(api, key, f"f{n}", "when does the delivery arrive?")["session_id"] for n in range(3)]
    for n in range(4):
        turn(api, key, f"p{n}", "hello")
    first = listed(api, key, "?fallback=true&limit=2")
    rest = listed(api, key, f"?fallback=true&limit=2&cursor={first['next_cursor']}")
    assert [s["session_id"] for s in first["sessions"] + rest["sessions"]] == list(reversed(wanted))
    assert rest["next_cursor"] is None


def test_another_tenant_sees_none_of_the_sessions(api: Api) -> None:
    key = a_desk(api)
    turn(api, key, "ana", "hello")
    _, other = api.new_tenant("other")
    assert listed(api, other)["sessions"] == []
    assert api.call("GET", f"/v1/agents/{AGENT}/sessions").status_code == 401


def test_bad_filters_and_foreign_cursors_are_422_with_their_paths(api: Api) -> None:
    key = a_desk(api)
    response = api.call("GET", f"/v1/agents/{AGENT}/sessions?fallback=yes", key)
    assert (response.status_code, paths_of(response)) == (422, ["fallback"])
    response = api.call("GET", f"/v1/agents/{AGENT}/sessions?cursor=bm9wZQ", key)
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_input")


def test_an_erased_interlocutors_sessions_leave_the_list_and_a_deleted_agents_stay(api: Api) -> None:
    key = a_desk(api)
    kept = turn(api, key, "ana", "hello")["session_id"]
    erased = turn(api, key, "bob", "hello")
    path = f"/v1/agents/{AGENT}/interlocutors/{erased['interlocutor_id']}"
    assert api.call("DELETE", path, key).status_code == 204
    assert [s["session_id"] for s in listed(api, key)["sessions"]] == [kept]
    assert api.call("DELETE", f"/v1/agents/{AGENT}", key).status_code == 204
    assert [s["session_id"] for s in listed(api, key)["sessions"]] == [kept]  # its records stay readable
