"""Running tools against a real local HTTP server: inputs, guards, confirmation, retries, timeouts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.config import ToolsConfig
from chalicelib.domain.interlocutor import FieldScope, ValueSource
from chalicelib.domain.session import PendingConfirmation
from chalicelib.domain.tool import SideEffect, Tool
from chalicelib.focal.tools import (
    ToolCalls,
    ToolRound,
    ToolsResult,
    ToolTurn,
    http_tool_runner,
    idempotency_key,
    run_tools,
)
from chalicelib.focal.types import RuleDecision, ScenarioDecision, ToolRequest, Understanding
from chalicelib.providers.tools_http import HttpToolClient
from tests.focal.factories import a_bundle, a_field, a_loaded, a_rule, a_scenario, a_step, a_tool


@dataclass
class ToolServer:
    """A real HTTP server playing several tools; it records every call it receives."""

    url: str
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)

    def calls_to(self, path: str) -> list[tuple[str, dict[str, Any], str]]:
        return [call for call in self.calls if call[0] == path]


@pytest.fixture
def server() -> Iterator[ToolServer]:
    state = ToolServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.calls.append((self.path, body, self.headers.get("Idempotency-Key", "")))
            if state.failures_left.get(self.path, 0) > 0:
                state.failures_left[self.path] -= 1
                return self._answer(503, {"error": "try again"})
            if self.path == "/slow":
                time.sleep(1.0)
            if self.path == "/bad":
                return self._answer(400, {"error": "bad arguments"})
            return self._answer(
                200, {"status": "shipped", "echo": body, "email": "new@example.com", "count": "not a number"}
            )

        def _answer(self, status: int, payload: Mapping[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def tool(server: ToolServer, tool_id: str, path: str = "/lookup", **fields: Any) -> Tool:
    return a_tool(tool_id, url=server.url + path, **fields)


def run(
    bundle: AgentBundle,
    *,
    rules: Sequence[str] = (),
    step: tuple[str, str] | None = None,
    known: Mapping[str, Any] | None = None,
    confirmed: bool = False,
    pending: PendingConfirmation | None = None,
    deadline_in_s: float = 10.0,
    config: ToolsConfig | None = None,
) -> ToolsResult:
    decisions = [RuleDecision(rule_id, True, "applies") for rule_id in rules]
    scenario = (
        ScenarioDecision(action="continue", scenario_id=step[0], step_id=step[1])
        if step
        else ScenarioDecision(action="none")
    )
    runner = http_tool_runner(HttpToolClient(allow_private=True))
    return run_tools(
        a_loaded(bundle),
        ToolRound(decisions, scenario, known or {}),
        ToolTurn("t1", "ses1", Understanding(confirmed=confirmed), pending),
        ToolCalls(runner, config or ToolsConfig(), deadline_s=time.monotonic() + deadline_in_s),
    )


def bundle_with(*tools: Tool, fields: Sequence[str] = ("order_id", "email", "status")) -> AgentBundle:
    rule = a_rule("r1", tools=[t.id for t in tools])
    return a_bundle(rules=[rule], tools=list(tools), fields=[a_field(name) for name in fields])


def test_a_pure_tool_is_called_with_its_inputs_and_its_result_is_kept(server: ToolServer) -> None:
    lookup = tool(server, "lookup", inputs={"id": "order_id"})

    result = run(bundle_with(lookup), rules=["r1"], known={"order_id": "A1"})

    [outcome] = result.outcomes
    assert (outcome.status, outcome.attempts) == ("ok", 1)
    assert result.results["lookup"]["status"] == "shipped"
    assert server.calls == [("/lookup", {"id": "A1"}, outcome.idempotency_key)]
    assert result.irreversible_ran is False


def test_a_missing_input_skips_the_tool_without_calling_it(server: ToolServer) -> None:
    lookup = tool(server, "lookup", inputs=["order_id"])

    result = run(bundle_with(lookup), rules=["r1"], known={"order_id": "  "})

    assert result.outcomes[0].status == "skipped_missing_input"
    assert server.calls == []


def test_a_guard_naming_a_missing_value_does_not_hold_and_nothing_is_called(server: ToolServer) -> None:
    cancel = tool(server, "cancel", "/cancel", guard='status == "pending"')
    bundle = bundle_with(cancel)

    missing = run(bundle, rules=["r1"])
    wrong = run(bundle, rules=["r1"], known={"status": "shipped"})
    right = run(bundle, rules=["r1"], known={"status": "pending"})

    assert [r.outcomes[0].status for r in (missing, wrong, right)] == ["skipped_guard", "skipped_guard", "ok"]
    assert len(server.calls_to("/cancel")) == 1


def test_a_guard_may_read_an_earlier_tools_result(server: ToolServer) -> None:
    lookup = tool(server, "lookup")
    notify = tool(server, "notify", "/notify", guard='tools["lookup"]["status"] == "shipped"')

    result = run(bundle_with(lookup, notify), rules=["r1"])

    assert [o.status for o in result.outcomes] == ["ok", "ok"]


def test_a_confirmed_irreversible_tool_runs_only_after_a_yes_to_the_same_arguments(
    server: ToolServer,
) -> None:
    cancel = tool(
        server,
        "cancel",
        "/cancel",
        inputs={"order": "order_id"},
        side_effect=SideEffect.IRREVERSIBLE,
        confirm=True,
    )
    bundle = bundle_with(cancel)

    first = run(bundle, rules=["r1"], known={"order_id": "A1"})
    assert first.outcomes[0].status == "awaiting_confirmation"
    assert first.confirmation_request == PendingConfirmation(tool_id="cancel", inputs={"order": "A1"})
    assert server.calls == []

    other_order = run(
        bundle, rules=["r1"], known={"order_id": "B2"}, confirmed=True, pending=first.confirmation_request
    )
    no_yes = run(
        bundle, rules=["r1"], known={"order_id": "A1"}, confirmed=False, pending=first.confirmation_request
    )
    assert other_order.outcomes[0].status == no_yes.outcomes[0].status == "awaiting_confirmation"
    assert other_order.confirmation_request == PendingConfirmation(tool_id="cancel", inputs={"order": "B2"})
    assert server.calls == []

    yes = run(
        bundle, rules=["r1"], known={"order_id": "A1"}, confirmed=True, pending=first.confirmation_request
    )
    assert yes.outcomes[0].status == "ok"
    assert yes.confirmation_request is None
    assert yes.irreversible_ran is True
    assert server.calls_to("/cancel") == [("/cancel", {"order": "A1"}, yes.outcomes[0].idempotency_key)]


def test_a_pure_tool_that_fails_once_is_retried_with_the_same_idempotency_key(server: ToolServer) -> None:
    server.failures_left["/lookup"] = 1
    lookup = tool(server, "lookup", inputs=["order_id"])

    result = run(bundle_with(lookup), rules=["r1"], known={"order_id": "A1"})

    assert (result.outcomes[0].status, result.outcomes[0].attempts) == ("ok", 2)
    keys = {key for _, _, key in server.calls_to("/lookup")}
    assert len(server.calls_to("/lookup")) == 2 and len(keys) == 1


def test_retries_run_out_into_an_error(server: ToolServer) -> None:
    server.failures_left["/lookup"] = 5
    lookup = tool(server, "lookup", retries=1)

    result = run(bundle_with(lookup), rules=["r1"], config=ToolsConfig(max_retries=4))

    assert (result.outcomes[0].status, result.outcomes[0].attempts) == ("error", 2)
    assert "503" in result.outcomes[0].error
    assert result.results == {}


def test_an_irreversible_tool_that_fails_is_never_retried(server: ToolServer) -> None:
    server.failures_left["/cancel"] = 1
    cancel = tool(server, "cancel", "/cancel", side_effect=SideEffect.IRREVERSIBLE, retries=3)

    result = run(bundle_with(cancel), rules=["r1"])

    assert (result.outcomes[0].status, result.outcomes[0].attempts) == ("error", 1)
    assert "not retried" in result.outcomes[0].error
    assert len(server.calls_to("/cancel")) == 1
    assert result.irreversible_ran is True


def test_a_refused_call_is_not_retried(server: ToolServer) -> None:
    bad = tool(server, "bad", "/bad", retries=3)

    result = run(bundle_with(bad), rules=["r1"])

    assert (result.outcomes[0].status, result.outcomes[0].attempts) == ("error", 1)


def test_a_tool_that_does_not_answer_in_time_times_out(server: ToolServer) -> None:
    slow = tool(server, "slow", "/slow", timeout_s=0.2, retries=0)

    result = run(bundle_with(slow), rules=["r1"])

    assert result.outcomes[0].status == "timeout"
    assert result.results == {}


def test_nothing_is_called_once_the_deadline_has_passed(server: ToolServer) -> None:
    lookup = tool(server, "lookup")

    result = run(bundle_with(lookup), rules=["r1"], deadline_in_s=-1)

    assert (result.outcomes[0].status, result.outcomes[0].attempts) == ("timeout", 0)
    assert server.calls == []


def test_outputs_set_fields_persistent_and_session_scoped_with_source_tool(server: ToolServer) -> None:
    lookup = tool(
        server,
        "lookup",
        outputs={"status": "status", "email": "email", "count": "count", "absent": "order_id"},
    )
    fields = [
        a_field("status", scope=FieldScope.SESSION),
        a_field("email", type="email"),
        a_field("count", type="integer"),
        a_field("order_id"),
    ]
    bundle = a_bundle(rules=[a_rule("r1", tools=["lookup"])], tools=[lookup], fields=fields)

    result = run(bundle, rules=["r1"], known={"email": "old@example.com"})

    assert [(c.name, c.value, c.source) for c in result.field_changes] == [
        ("email", "new@example.com", ValueSource.TOOL)
    ]
    assert result.session_values == {"status": "shipped"}
    assert result.values == {"email": "new@example.com", "status": "shipped"}


def test_a_field_that_tools_may_not_set_is_left_alone(server: ToolServer) -> None:
    lookup = tool(server, "lookup", outputs={"status": "status"})
    bundle = a_bundle(
        rules=[a_rule("r1", tools=["lookup"])],
        tools=[lookup],
        fields=[a_field("status", sources=[ValueSource.USER])],
    )

    assert run(bundle, rules=["r1"]).field_changes == ()


def test_tools_of_selected_rules_and_the_current_step_run_once_each(server: ToolServer) -> None:
    lookup, notify, other = (
        tool(server, "lookup"),
        tool(server, "notify", "/notify"),
        tool(server, "other", "/o"),
    )
    rules = [
        a_rule("r1", tools=["lookup"]),
        a_rule("r2", tools=["lookup", "notify"]),
        a_rule("r3", tools=["other"]),
    ]
    steps = [a_step("s1", tools=["notify", "lookup"])]
    bundle = a_bundle(
        rules=rules, tools=[lookup, notify, other], scenarios=[a_scenario("returns", steps=steps)]
    )
    decisions = [
        RuleDecision("r1", True, "applies"),
        RuleDecision("r2", True, "applies"),
        RuleDecision("r3", False, "not_confirmed"),
    ]

    result = run_tools(
        a_loaded(bundle),
        ToolRound(decisions, ScenarioDecision(action="continue", scenario_id="returns", step_id="s1"), {}),
        ToolTurn("t1", "ses1", Understanding()),
        ToolCalls(http_tool_runner(HttpToolClient(allow_private=True)), ToolsConfig(),
                  deadline_s=time.monotonic() + 10),
    )

    assert [o.tool_id for o in result.outcomes] == ["lookup", "notify"]
    assert sorted(path for path, _, _ in server.calls) == ["/lookup", "/notify"]


def test_the_idempotency_key_is_stable_and_changes_with_the_arguments() -> None:
    key = idempotency_key("t1", "ses1", "cancel", {"order": "A1", "n": 1})

    assert key == idempotency_key("t1", "ses1", "cancel", {"n": 1, "order": "A1"})
    assert key != idempotency_key("t1", "ses1", "cancel", {"order": "B2", "n": 1})
    assert key != idempotency_key("t2", "ses1", "cancel", {"order": "A1", "n": 1})


def test_a_timeout_of_an_irreversible_call_is_reported_as_an_error_with_unknown_outcome() -> None:
    calls: list[ToolRequest] = []

    def hanging(request: ToolRequest) -> Mapping[str, Any]:
        calls.append(request)
        raise TimeoutError

    cancel = a_tool("cancel", side_effect=SideEffect.IRREVERSIBLE)
    bundle = a_bundle(rules=[a_rule("r1", tools=["cancel"])], tools=[cancel])

    result = run_tools(
        a_loaded(bundle),
        ToolRound([RuleDecision("r1", True, "applies")], ScenarioDecision(action="none"), {}),
        ToolTurn("t1", "ses1", Understanding()),
        ToolCalls(hanging, ToolsConfig(max_retries=3), deadline_s=time.monotonic() + 10),
    )

    assert (result.outcomes[0].status, len(calls)) == ("error", 1)
    assert "outcome unknown" in result.outcomes[0].error
    assert calls[0].retries == 0 and calls[0].timeout_s == 5.0


def test_a_relative_url_is_appended_to_tools_base_url_keeping_its_path(server: ToolServer) -> None:
    lookup = a_tool("lookup", url="/tools/lookup", inputs={"id": "order_id"})

    result = run(bundle_with(lookup), rules=["r1"], known={"order_id": "A1"},
                 config=ToolsConfig(base_url=server.url + "/v2/"))

    assert result.outcomes[0].status == "ok"
    assert [call[0] for call in server.calls] == ["/v2/tools/lookup"]


def test_a_relative_url_without_tools_base_url_is_refused_and_nothing_is_called(server: ToolServer) -> None:
    lookup = a_tool("lookup", url="/tools/lookup", inputs={"id": "order_id"})

    result = run(bundle_with(lookup), rules=["r1"], known={"order_id": "A1"})

    [outcome] = result.outcomes
    assert (outcome.status, outcome.attempts) == ("error", 1)  # refused: not retried
    assert "tools.base_url" in outcome.error
    assert server.calls == []


def test_an_absolute_url_ignores_tools_base_url(server: ToolServer) -> None:
    lookup = tool(server, "lookup", inputs={"id": "order_id"})

    run(bundle_with(lookup), rules=["r1"], known={"order_id": "A1"},
        config=ToolsConfig(base_url="https://tools.example.com"))

    assert [call[0] for call in server.calls] == ["/lookup"]
