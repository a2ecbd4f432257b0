"""`ruche test --url`: the same conversation tests, against a running stack."""

from __future__ import annotations

from pathlib import Path

from chalicelib.cli.testfile import load_test_file
from tests.cli.conftest import EXAMPLES, Stack, ruche

SUITES = EXAMPLES / "tests"


def test_a_suite_runs_against_a_stack_and_skips_what_needs_the_in_process_runner(stack: Stack) -> None:
    ruche(
        "push",
        str(EXAMPLES / "retail-returns.yaml"),
        "--agent",
        "retail-returns",
        "--url",
        stack.url,
        "--key",
        stack.key,
    )

    result = ruche("test", str(SUITES / "retail-returns"), "--url", stack.url, "--key", stack.key)

    assert result.exit_code == 0, result.output
    assert "templates.yaml: opening hours are the exclusive template" in result.stdout
    assert "skipped (stubbed tools or a model script need the in-process runner)" in result.stdout
    remote, skipped = _remote_and_in_process_only(SUITES / "retail-returns")
    assert remote > 0 and skipped > 0
    assert f"{remote} passed, {skipped} skipped" in result.stdout


def _remote_and_in_process_only(folder: Path) -> tuple[int, int]:
    """Conversations that can run against a stack, and those that stub tools or script a model."""
    conversations = [conversation for path in sorted(folder.glob("*.yaml"))
                     for conversation in load_test_file(path).spec.conversations]
    in_process = [conversation for conversation in conversations if conversation.needs_in_process]
    return len(conversations) - len(in_process), len(in_process)


def test_a_failing_remote_expectation_shows_the_turn_trace(stack: Stack, tmp_path: Path) -> None:
    ruche("push", str(EXAMPLES / "retail-returns.yaml"), "--agent", "shop", "--url", stack.url, "--key", stack.key)
    test_file = tmp_path / "remote.yaml"
    test_file.write_text(
        "agent: shop\nconversations:\n  - name: hours\n    turns:\n"
        "      - user: When are you open?\n        expect: {rules: [return_policy], "
        "fields: {order_number: NW-1}}\n"
    )

    result = ruche("test", str(test_file), "--url", stack.url, "--key", stack.key)

    assert result.exit_code == 1
    assert "rules: expected [return_policy] applied, got [opening_hours]" in result.stdout
    assert "fields.order_number: expected 'NW-1', got no stored value" in result.stdout
    assert "✓ opening_hours" in result.stdout  # the trace, from the turn record


def test_a_remote_run_against_an_unknown_agent_is_one_line_and_exit_2(stack: Stack, tmp_path: Path) -> None:
    test_file = tmp_path / "remote.yaml"
    test_file.write_text("agent: ghost\nconversations:\n  - name: hi\n    turns:\n      - user: hello\n")

    result = ruche("test", str(test_file), "--url", stack.url, "--key", stack.key)

    assert result.exit_code == 2
    assert "agent 'ghost' not found" in result.stderr
