"""GET /v1/agents/{agent_id}/insights: built from the aggregates the commit keeps, checked by hand.

The model is tests/support/chat_server, scripted turn by turn, so every count below is known.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.runtime.services import reset_services
from tests.api.harness import Api
from tests.runtime.test_turns_end_to_end import AGENT, Desk, returns_agent, understood
from tests.support.chat_server import ChatServer

TODAY = dt.datetime.now(dt.UTC).date().isoformat()


@pytest.fixture
def desk(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "true")  # the model listens on 127.0.0.1
    reset_services()
    with ChatServer() as model:
        yield Desk(api, model)


def insights(desk: Desk, query: str = f"from={TODAY}&to={TODAY}") -> Any:
    return desk.api.call("GET", f"/v1/agents/{AGENT}/insights?{query}", desk.key)


def test_insights_match_a_hand_counted_run(desk: Desk) -> None:
    desk.publish(returns_agent(max_regeneration_attempts=1))
    model, applied = desk.model, []
    # Three customers start the returns scenario on its "identify" step.
    for user in ("ann", "bob", "cat"):
        model.reply_json(understood(scenario_signal="start", scenario_id="returns"))
        model.reply("Sure. What is your order number and email?")
        applied += desk.turn("I want to return an item", user=user)["outcome"]["rules"]
    # Ann gives both: identify is completed, and "done" (terminal) is entered and completed.
    model.reply_json(understood(values={"order_number": "A12345", "email": "ann@example.com"}))
    model.reply("Your return is registered.")
    body = desk.turn("A12345, ann@example.com", user="ann")
    assert body["outcome"]["scenario"] == {"id": "returns", "step": "done"}
    applied += body["outcome"]["rules"]
    # Bob walks away from the flow on "identify".
    model.reply_json(understood(scenario_signal="exit"))
    model.reply("No problem.")
    applied += desk.turn("forget it", user="bob")["outcome"]["rules"]
    # Dan asks for the opening hours (an exclusive template), then gets a guarantee twice: fallback.
    model.reply_json(understood(applicable_rules=["opening_hours"]))
    applied += desk.turn("When are you open?", user="dan")["outcome"]["rules"]
    model.reply_json(understood())
    model.reply("I guarantee a refund.")
    model.reply("I guarantee it, really.")
    fallback = desk.turn("Can I be sure?", user="dan")
    assert fallback["outcome"]["fallback_used"] and fallback["outcome"]["regeneration_attempts"] == 1
    applied += fallback["outcome"]["rules"]

    response = insights(desk)
    assert response.status_code == 200, response.body
    found = response.json_body
    assert (found["agent_id"], found["from"], found["to"]) == (AGENT, TODAY, TODAY)
    assert (found["turns"], found["fallbacks"], found["regenerations"]) == (7, 1, 1)
    assert found["fallback_rate"] == pytest.approx(1 / 7, abs=1e-4)
    assert found["regeneration_rate"] == pytest.approx(1 / 7, abs=1e-4)
    assert found["violations"] == [{"rule_id": "no_guarantees", "count": 2}]
    expected_applied = sorted({rule: applied.count(rule) for rule in applied}.items(), key=lambda x: (-x[1], x[0]))
    assert found["rules_applied"] == [{"rule_id": rule, "count": count} for rule, count in expected_applied]
    assert found["scenario_funnel"] == [{"scenario_id": "returns", "steps": [
        {"step_id": "identify", "entered": 3, "completed": 1, "left": 1},
        {"step_id": "done", "entered": 1, "completed": 1, "left": 0},
    ]}]


def test_an_unmatched_turn_is_counted_with_a_masked_sample(desk: Desk) -> None:
    bundle = returns_agent()
    bundle["rules"] = [rule for rule in bundle["rules"] if rule["id"] != "no_guarantees"]  # global: applies always
    desk.publish(bundle)
    desk.model.reply_json(understood())
    desk.model.reply("I can help with returns.")
    body = desk.turn("do you sell giraffes? write to zoe@example.org", user="zoe")
    assert body["outcome"]["rules"] == [] and body["outcome"]["scenario"] is None
    unmatched = insights(desk).json_body["unmatched"]
    assert unmatched["turns"] == 1
    [sample] = unmatched["samples"]
    assert sample["turn_id"] == body["turn_id"] and sample["session_id"] == body["session_id"]
    assert sample["message"] == "do you sell giraffes? write to ‹email›"
    assert sample["at"].startswith(TODAY)


def test_an_agent_with_no_turns_has_zero_rates_and_an_unknown_agent_is_404(desk: Desk) -> None:
    desk.publish(returns_agent())
    found = insights(desk).json_body
    assert (found["turns"], found["fallback_rate"], found["regeneration_rate"]) == (0, 0.0, 0.0)
    assert found["violations"] == [] and found["scenario_funnel"] == []
    assert found["unmatched"] == {"turns": 0, "samples": []}
    missing = desk.api.call("GET", f"/v1/agents/nobody/insights?from={TODAY}&to={TODAY}", desk.key)
    assert missing.status_code == 404 and missing.json_body["error"]["code"] == "not_found"
    reversed_range = insights(desk, "from=2026-02-02&to=2026-02-01")
    assert reversed_range.status_code == 422
