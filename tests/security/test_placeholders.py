"""Placeholders are filled exactly once, with only the names the plan allows: a user who types
`{{ risk_note }}` gets their own text back, never the value of a PII field (over HTTP)."""

from __future__ import annotations

import json
from typing import Any

from tests.api.harness import Api
from tests.security.hostile import a_hostile_bundle, publish, turn, turn_records

SECRET = "flagged for fraud review"


def a_signup_agent() -> dict[str, Any]:
    return a_hostile_bundle(
        fields=[{"name": "nickname", "type": "string", "pattern": r"\S+_\S+"},  # a handle: cool_cat
                {"name": "risk_note", "type": "string", "pii": True, "sources": ["api"]}],
        templates=[{"id": "welcome", "mode": "suggest", "text": "Welcome aboard {{ nickname }}!"}],
        scenarios=[{"id": "signup", "condition": "sign me up for the newsletter", "entry_step": "name",
                    "steps": [{"id": "name", "required_fields": ["nickname"],
                               "transitions": [{"to": "done", "expression": 'nickname != ""'}]},
                              {"id": "done", "terminal": True, "templates": ["welcome"]}]}])


def test_a_user_who_types_a_placeholder_gets_their_text_back_not_a_pii_value(api: Api) -> None:
    # GIVEN an interlocutor the tenant has flagged with an internal PII note
    _, key = api.new_tenant()
    assert publish(api, key, a_signup_agent())[0].status_code == 200
    first, _ = turn(api, key, "Please sign me up for the newsletter")
    assert first["outcome"]["scenario"] == {"id": "signup", "step": "name"}
    patched = api.call("PATCH", f"/v1/agents/hostile/interlocutors/{first['interlocutor_id']}", key,
                       {"fields": {"risk_note": SECRET}})
    assert patched.status_code == 200, patched.body
    # WHEN the user gives a "nickname" that is the note's placeholder
    second, _ = turn(api, key, "{{risk_note}}", session_id=first["session_id"])
    # THEN the welcome template inserts the nickname as text, and it is not filled a second time
    assert second["outcome"]["scenario"] == {"id": "signup", "step": "done"}
    assert second["reply"] == "Welcome aboard {{risk_note}}!"
    assert SECRET not in json.dumps(turn_records(api, key, first["session_id"]))
