"""`ruche usage` and `ruche insights` against the app served over real HTTP (moto in-process)."""

from __future__ import annotations

import datetime as dt
import json

from tests.cli.conftest import Stack, ruche
from tests.runtime.test_usage import SHOP

TODAY = dt.datetime.now(dt.UTC).date().isoformat()


def shop_with_turns(stack: Stack) -> None:
    assert stack.api.call("PUT", "/v1/agents/shop", stack.key, SHOP).status_code == 200
    for user, message in (("u1", "When does the shop open?"), ("u2", "What is the voucher code?")):
        response = stack.api.call("POST", "/v1/agents/shop/turns", stack.key, {"user_id": user, "message": message})
        assert response.status_code == 200, response.body


def test_usage_prints_a_table_with_totals_and_the_same_numbers_as_json(stack: Stack) -> None:
    shop_with_turns(stack)
    as_json = ruche("usage", "--json", "--url", stack.url, "--key", stack.key)
    assert as_json.exit_code == 0, as_json.output
    answer = json.loads(as_json.stdout)
    assert answer["totals"]["turns"] == 2 and answer["totals"]["fallbacks"] == 1
    printed = ruche("usage", "--from", TODAY, "--to", TODAY, "--url", stack.url, "--key", stack.key)
    assert printed.exit_code == 0, printed.output
    header, day, total = printed.stdout.splitlines()
    assert header.split()[:4] == ["date", "agent", "turns", "llm_calls"]
    assert day.split()[:3] == [TODAY, "shop", "2"]
    assert total.split() == ["total", *(str(answer["totals"][name]) for name in answer["totals"])]


def test_insights_prints_rates_rules_and_a_bad_range_is_one_line_and_exit_2(stack: Stack) -> None:
    shop_with_turns(stack)
    printed = ruche("insights", "shop", "--url", stack.url, "--key", stack.key)
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert lines[0].endswith("2 turns, fallback rate 50.0%, regeneration rate 100.0%")
    assert "no_codes" in printed.stdout and "opening_hours" in printed.stdout
    as_json = json.loads(ruche("insights", "shop", "--json", "--url", stack.url, "--key", stack.key).stdout)
    assert as_json["violations"] == [{"rule_id": "no_codes", "count": 3}]
    reversed_range = ruche("insights", "shop", "--from", "2026-02-02", "--to", "2026-02-01",
                           "--url", stack.url, "--key", stack.key)
    assert reversed_range.exit_code == 2
    assert reversed_range.stderr.startswith("ruche: ") and "invalid_input" in reversed_range.stderr
