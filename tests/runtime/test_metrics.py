"""Each committed turn prints one CloudWatch EMF line with a fixed set of metrics and dimensions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.runtime.metrics import NAMESPACE, TURN_METRICS
from tests.api.harness import Api
from tests.runtime.test_usage import SHOP


def emf_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found


def value(line: dict[str, Any], name: str) -> float:
    found = line[name]
    return float(found[0] if isinstance(found, list) else found)


def test_a_turn_emits_its_metrics_with_only_the_service_dimension(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    tenant_id, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/shop", key, SHOP).status_code == 200
    capsys.readouterr()
    body = api.call("POST", "/v1/agents/shop/turns", key, {"user_id": "u1", "message": "What is the voucher code?"})
    assert body.status_code == 200
    [line] = emf_lines(capsys.readouterr().out)
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["service"]]  # no tenant or agent: the metric count never grows
    assert sorted(metric["Name"] for metric in directive["Metrics"]) == sorted(TURN_METRICS)
    outcome = body.json_body["outcome"]
    assert (value(line, "LlmCalls"), value(line, "Fallbacks"), value(line, "Regenerations")) == (
        outcome["llm_calls"], int(outcome["fallback_used"]), outcome["regeneration_attempts"])
    assert value(line, "Violations") == 3 and value(line, "Turns") == 1 and value(line, "TurnLatency") > 0
    assert (line["tenant_id"], line["agent_id"], line["turn_id"]) == (tenant_id, "shop", body.json_body["turn_id"])
    assert "voucher" not in json.dumps(line)  # ids and counts only, never the message


def test_metrics_can_be_switched_off(api: Api, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/shop", key, SHOP).status_code == 200
    assert api.call("POST", "/v1/agents/shop/turns", key, {"user_id": "u1", "message": "hi"}).status_code == 200
    assert emf_lines(capsys.readouterr().out) == []
