"""PII masking covers every version a turn knows and every email- or phone-shaped text of a PII
field's type: a superseded address the user repeats, or one never stored, is masked in the turn
records and in the history the model reads next turn (over HTTP)."""

from __future__ import annotations

import json

from tests.api.harness import Api
from tests.security.hostile import a_hostile_bundle, publish, turn, turn_records

OLD, NEW, NEVER_STORED = "old.addr@example.com", "new.addr@example.com", "boss@corp.example.org"
PHONE = "+44 20 7946 0958"


def test_a_superseded_email_and_unstored_ones_are_masked_in_records_and_history(api: Api) -> None:
    # GIVEN an agent that keeps the user's email and phone as PII
    tenant_id, key = api.new_tenant()
    bundle = a_hostile_bundle(fields=[{"name": "email", "type": "email", "pii": True},
                                      {"name": "phone", "type": "phone", "pii": True}])
    assert publish(api, key, bundle)[0].status_code == 200
    first, _ = turn(api, key, f"my email is {OLD}")
    # WHEN the user replaces it, repeating the old one, and mentions an address and a phone never stored
    turn(api, key, f"use {NEW} instead of {OLD}, and cc {NEVER_STORED} or call {PHONE}",
         session_id=first["session_id"])
    # THEN no version is in clear in the audit trail, nor in the history the model reads next turn
    records = json.dumps(turn_records(api, key, first["session_id"]), ensure_ascii=False)
    session = api.services.sessions.get(tenant_id, first["session_id"])
    assert session is not None
    history = json.dumps(session.history, ensure_ascii=False)
    for text in (records, history):
        for value in (OLD, NEW, NEVER_STORED, PHONE, "7946 0958"):
            assert value not in text
    assert "use ‹email› instead of ‹email›, and cc ‹email› or call ‹phone›" in history
    assert "use ‹email› instead of ‹email›, and cc ‹email› or call ‹phone›" in records
    # ... while the stored value is the new one
    profile = api.call("GET", f"/v1/agents/hostile/interlocutors/{first['interlocutor_id']}", key).json_body
    assert profile["fields"]["email"]["value"] == NEW
