"""The example agents of examples/agents: valid bundles that show every feature, with working demo tools."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.domain.bundle import AgentBundle, parse_bundle
from chalicelib.domain.rule import Scope
from chalicelib.domain.template import TemplateMode
from chalicelib.domain.tool import SideEffect
from infra.demo_tools import DemoToolServer
from infra.local_seed import bundle_paths

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "agents"
PATHS = bundle_paths()


def load(path: Path) -> AgentBundle:
    return parse_bundle(yaml.safe_load(path.read_text()))


@pytest.fixture(scope="module")
def demo_tools() -> Iterator[DemoToolServer]:
    server = DemoToolServer(port=0).start()
    yield server
    server.stop()


def post(server: DemoToolServer, tool_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{server.base_url}/tools/{tool_id}", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def call_tool(server: DemoToolServer, tool_id: str, inputs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return post(server, tool_id, json.dumps(inputs).encode())


def test_the_two_documented_example_agents_are_there() -> None:
    assert {path.stem for path in PATHS} >= {"retail-returns", "telecom-support"}
    assert all(path.parent == EXAMPLES for path in PATHS)


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_each_example_is_a_valid_bundle_that_uses_every_kind_of_item(path: Path) -> None:
    bundle = load(path)

    scopes = {rule.scope for rule in bundle.rules}
    assert Scope.GLOBAL in scopes
    assert scopes & {Scope.SCENARIO, Scope.STEP}
    assert {template.mode for template in bundle.templates} == set(TemplateMode)
    assert any(len(scenario.steps) >= 2 and any(step.required_fields for step in scenario.steps)
               for scenario in bundle.scenarios)
    assert any(rule.hard_constraint and rule.expression for rule in bundle.rules)
    assert bundle.tools
    assert bundle.channels


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_each_example_has_a_handoff_and_a_judged_hard_constraint(path: Path) -> None:
    bundle = load(path)

    assert any(rule.handoff for rule in bundle.rules)
    assert any(rule.hard_constraint and rule.expression is None for rule in bundle.rules)


def test_the_returns_desk_guards_and_confirms_its_irreversible_refund() -> None:
    bundle = load(EXAMPLES / "retail-returns.yaml")

    refund = bundle.tool("issue_refund")
    assert refund is not None
    assert refund.side_effect is SideEffect.IRREVERSIBLE
    assert refund.confirm
    assert refund.guard is not None and 'order_status == "delivered"' in refund.guard
    fallbacks = {template.scope for template in bundle.templates if template.mode is TemplateMode.FALLBACK}
    assert fallbacks == {Scope.GLOBAL, Scope.SCENARIO, Scope.STEP}
    email = bundle.field("email")
    assert email is not None and email.pii
    twilio = bundle.channels[next(name for name in bundle.channels if name.value == "twilio")]
    assert twilio.config["response"] == {"format": "plain", "max_length": 320}


def test_the_support_line_accepts_an_account_number_or_a_phone_number() -> None:
    bundle = load(EXAMPLES / "telecom-support.yaml")

    groups = [item for scenario in bundle.scenarios for step in scenario.steps
              for item in step.required_fields if not isinstance(item, str)]
    assert [group.any_of for group in groups][:1] == [[["account_number"], ["phone"]]]
    phone = bundle.field("phone")
    assert phone is not None and phone.pii


def test_a_refund_above_500_breaks_the_returns_desk_cap_and_one_below_does_not() -> None:
    from chalicelib.domain.expressions import REPLY_NAMES, compile_expression

    bundle = load(EXAMPLES / "retail-returns.yaml")
    cap = bundle.rule("refund_cap")
    assert cap is not None and cap.expression is not None
    expression = compile_expression(cap.expression, REPLY_NAMES | {field.name for field in bundle.fields})

    assert not expression.evaluate({"reply": "I have refunded $649.00 to your card."}).holds
    assert expression.evaluate({"reply": "I have refunded $129.99 to your card."}).holds
    assert expression.evaluate({"reply": "Your refund is on its way."}).holds


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_every_example_tool_points_at_the_demo_tools_and_is_answered_there(
        path: Path, demo_tools: DemoToolServer) -> None:
    samples = {"order_number": "NW-204513", "order": "NW-204513", "email": "ana@example.com",
               "amount": 120.0, "reason": "damaged", "account": "40112233", "phone": "+15550100123",
               "postcode": "10001", "service": "cleaning", "day": "2027-03-02", "time": "9:00",
               "patient_name": "Ana Lopez", "booking": "HD-12345"}
    for tool in load(path).tools:
        assert tool.url == f"/tools/{tool.id}"  # relative: tools.base_url says where the tools are
        status, result = call_tool(demo_tools, tool.id, {arg: samples[arg] for arg in tool.input_map})
        assert status == 200
        assert set(tool.outputs) <= set(result), f"{tool.id} answers no {set(tool.outputs) - set(result)}"


def test_demo_tools_answer_the_same_inputs_the_same_way(demo_tools: DemoToolServer) -> None:
    first = call_tool(demo_tools, "lookup_order", {"order_number": "NW-204513"})
    again = call_tool(demo_tools, "lookup_order", {"order_number": "NW-204513"})

    assert first == again
    assert first[1]["status"] == "delivered"
    assert first[1]["within_return_window"] is True


def test_demo_tools_refuse_unknown_orders_tools_and_bodies(demo_tools: DemoToolServer) -> None:
    assert call_tool(demo_tools, "lookup_order", {"order_number": "12345"})[0] == 404
    assert call_tool(demo_tools, "issue_refund", {"order": "nope"})[0] == 404
    assert call_tool(demo_tools, "check_line", {"postcode": "10001"})[0] == 400
    assert call_tool(demo_tools, "launch_rocket", {})[0] == 404
    assert post(demo_tools, "check_line", b"[1, 2]")[0] == 400
    assert post(demo_tools, "check_line", b"{oops")[0] == 400


def test_demo_line_check_reports_outages_and_suspended_lines(demo_tools: DemoToolServer) -> None:
    outage = call_tool(demo_tools, "check_line", {"account": "40112233", "postcode": "e1 6an"})[1]
    suspended = call_tool(demo_tools, "check_line", {"phone": "+1 555 010 0120", "postcode": "94110"})[1]

    assert outage["outage"] is True and outage["line_status"] == "active"
    assert suspended["outage"] is False and suspended["line_status"] == "suspended"


def test_the_bundle_shown_in_the_readme_is_valid() -> None:
    readme = (EXAMPLES.parent.parent / "README.md").read_text()
    snippet = readme.split("```yaml\n", 1)[1].split("```", 1)[0]

    bundle = parse_bundle(yaml.safe_load(snippet))

    assert bundle.tool("issue_refund") is not None
    assert {template.mode for template in bundle.templates} == set(TemplateMode)


def test_the_readme_demo_reaches_the_refund_with_one_yes_against_the_demo_tools(demo_tools: DemoToolServer) -> None:
    from chalicelib.cli.runner import InProcessAgent
    from chalicelib.focal.tools import http_tool_runner
    from chalicelib.providers.embeddings import OfflineEmbedder
    from chalicelib.providers.offline import OfflineLlm
    from chalicelib.providers.tools_http import HttpToolClient

    agent = InProcessAgent(
        bundle=load(EXAMPLES / "retail-returns.yaml"), agent_id="retail-returns", llm=OfflineLlm(),
        embedder=OfflineEmbedder(), tools=http_tool_runner(HttpToolClient(allow_private=True)),
        platform_layer={"network": {"allow_private": True}, "tools": {"base_url": demo_tools.base_url}})

    first = agent.send("Hi, I would like to return order NW-204513, it arrived damaged").reply
    second = agent.send("My email is ana@example.com").reply
    third = agent.send("yes please").reply

    assert first.endswith("Which email address did you place the order with?")
    assert "refund $232.99 for order NW-204513" in second and second.endswith("Shall I go ahead?")
    assert third.startswith("Done: your refund for order NW-204513 is on its way (reference RF-")
