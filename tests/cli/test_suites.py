"""`ruche test` in-process: the example agents' suites, failures, reports, scripted and recorded models."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import EXAMPLES, ruche
from tests.support.chat_server import ChatServer

SUITES = sorted(path for path in (EXAMPLES / "tests").iterdir() if path.is_dir())
SMALL_BUNDLE = """\
agent: {name: Tiny}
fields:
  - {name: city, type: enum, values: [Paris, Lyon], scope: session}
templates:
  - {id: hours, mode: exclusive, text: We open at 9.}
  - {id: sorry, mode: fallback, text: "Sorry, please call us."}
rules:
  - {id: hours, condition: the customer asks when the shop opens, action: give the hours, templates: [hours]}
  - id: no_promises
    condition: any reply
    action: never promise anything
    hard_constraint: true
    expression: not contains(reply, "promise")
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    write(tmp_path, "tiny.yaml", SMALL_BUNDLE)
    return tmp_path


def a_test(conversations: str) -> str:
    return f"bundle: tiny.yaml\nconversations:\n{conversations}"


@pytest.mark.parametrize("suite", SUITES, ids=[path.name for path in SUITES])
def test_each_example_agent_ships_a_passing_conversation_suite(suite: Path) -> None:
    agents = {path.stem for path in EXAMPLES.glob("*.yaml")}
    assert suite.name in agents

    result = ruche("test", str(suite))

    assert result.exit_code == 0, result.output
    assert "failed" not in result.stdout


def test_every_example_agent_has_a_suite_covering_scenario_constraint_template_and_tool() -> None:
    for agent in sorted(EXAMPLES.glob("*.yaml")):
        files = [yaml.safe_load(path.read_text()) for path in (EXAMPLES / "tests" / agent.stem).glob("*.yaml")]
        turns = [turn for spec in files for conversation in spec["conversations"] for turn in conversation["turns"]]
        expects = [turn.get("expect", {}) for turn in turns]
        assert any("/" in str(expect.get("scenario", "")) for expect in expects), agent.stem
        assert any(
            expect.get("regeneration_attempts") == 1 and expect.get("fallback") is False for expect in expects
        ), agent.stem
        assert any(expect.get("fallback") is True for expect in expects), agent.stem
        assert any(
            expect.get("tools", {}).get(tool) == "ok" for expect in expects for tool in expect.get("tools", {})
        ), agent.stem
        assert any(conversation.get("tools") for spec in files for conversation in spec["conversations"])


def test_a_failed_expectation_shows_expected_and_got_with_the_trace_and_exits_1(tiny: Path) -> None:
    test_file = write(
        tiny,
        "hours.yaml",
        a_test(
            "  - name: hours\n    turns:\n      - user: when does the shop open?\n"
            "        expect: {reply: {contains: [noon]}, rules: [hours], llm_calls: 3, scenario: none}\n"
        ),
    )

    result = ruche("test", str(test_file))

    assert result.exit_code == 1
    assert f"FAILED {test_file}:3: hours" in result.stdout
    assert "✗ reply: expected it to contain 'noon', got 'We open at 9.'" in result.stdout
    assert "✗ llm_calls: expected 3, got 1" in result.stdout
    assert "✓ hours" in result.stdout  # the trace
    assert "0 passed" not in result.stdout and "1 failed" in result.stdout
    assert result.stderr.strip().endswith("ruche: 1 of 1 conversations failed")


def test_every_kind_of_expectation_can_fail(tiny: Path) -> None:
    test_file = write(
        tiny,
        "all.yaml",
        a_test(
            "  - name: all of them\n    turns:\n      - user: when does the shop open? I am in Paris\n"
            "        expect:\n          reply: {not_contains: [open], matches: '^Closed'}\n"
            "          rules: [nope]\n          not_rules: [hours]\n          scenario: shop/step\n"
            "          fallback: true\n          regeneration_attempts: 1\n          handoff: true\n"
            "          fields: {city: Lyon, missing: 1}\n          tools: {lookup: ok}\n"
        ),
    )

    result = ruche("test", str(test_file))

    for expected in (
        "expected it not to contain 'open'",
        "expected it to match /^Closed/",
        "rules: expected [nope] applied, got [hours] (missing [nope])",
        "rules: expected [hours] not applied",
        "scenario: expected shop/step, got none",
        "fallback: expected true, got false",
        "regeneration_attempts: expected 1, got 0",
        "handoff: expected true, got false",
        "fields.city: expected 'Lyon', got 'Paris'",
        "fields.missing: expected 1, got no stored value",
        "tools.lookup: expected ok, got not called",
    ):
        assert expected in result.stdout


def test_a_scripted_model_that_violates_is_regenerated_and_a_short_script_is_reported(tiny: Path) -> None:
    test_file = write(
        tiny,
        "model.yaml",
        a_test(
            "  - name: regenerated\n    turns:\n      - user: tell me something\n        model:\n"
            "          - {text: I promise you everything}\n          - {text: Here is something}\n"
            "        expect: {regeneration_attempts: 1, reply: {contains: [Here is something]}}\n"
            "  - name: script too short\n    turns:\n      - user: tell me something\n        model:\n"
            "          - {text: I promise you everything}\n        expect: {fallback: true}\n"
            "  - name: script too long\n    turns:\n      - user: when does the shop open?\n        model:\n"
            "          - {text: never used}\n"
        ),
    )

    result = ruche("test", str(test_file))

    assert "regenerated" in result.stdout and "1 passed, 2 failed" in result.stdout
    assert "model script: the turn made more generation calls than the model script holds" in result.stdout
    assert "model script: 1 scripted generation call(s) were never made" in result.stdout


def test_junit_xml_lists_each_conversation_with_its_failure(tiny: Path) -> None:
    test_file = write(
        tiny,
        "j.yaml",
        a_test(
            "  - name: passes\n    turns:\n      - user: when does the shop open?\n        expect: {rules: [hours]}\n"
            "  - name: fails\n    turns:\n      - user: when does the shop open?\n        expect: {fallback: true}\n"
        ),
    )
    report = tiny / "out" / "junit.xml"

    ruche("test", str(test_file), "--junit-xml", str(report))

    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failure = suite.find("testcase[@name='fails']/failure")
    assert failure is not None and failure.get("message") == "turn 1: fallback: expected true, got false"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "bundle: tiny.yaml\nconversations:\n  - name: x\n    turns:\n      - user: hi\n"
            "        expect: {replyy: 1}\n",
            ":6: conversations[0].turns[0].expect.replyy: Extra inputs are not permitted",
        ),
        (
            "bundle: tiny.yaml\nconversations:\n  - name: x\n    turns: []\n",
            ":4: conversations[0].turns: List should have at least 1 item",
        ),
        (
            "bundle: tiny.yaml\nconversations:\n  - name: x\n    turns:\n      - user: hi\n"
            "        expect: {scenario: a}\n",
            ":6: conversations[0].turns[0].expect.scenario: Value error, write `scenario_id/step_id`, or `none`",
        ),
        ("- just a list\n", ":1: a test file is a mapping"),
        ("conversations: [\n", ":2: not valid YAML"),
    ],
)
def test_a_malformed_test_file_is_one_clear_message_and_exit_2(tiny: Path, text: str, where: str) -> None:
    test_file = write(tiny, "bad.yaml", text)

    result = ruche("test", str(test_file))

    assert result.exit_code == 2
    assert f"{test_file}{where}" in result.stderr
    assert "Traceback" not in result.output


def test_a_test_file_without_a_bundle_cannot_run_in_process(tmp_path: Path) -> None:
    test_file = write(tmp_path, "t.yaml", "agent: shop\nconversations:\n  - name: x\n    turns:\n      - user: hi\n")

    result = ruche("test", str(test_file))

    assert result.exit_code == 2
    assert "in-process runs need `bundle:`" in result.stderr


def test_a_folder_without_test_files_is_a_usage_error(tmp_path: Path) -> None:
    result = ruche("test", str(tmp_path))

    assert result.exit_code == 2
    assert "no test files" in result.stderr


def test_a_test_whose_bundle_is_invalid_fails_with_the_bundle_problems(tmp_path: Path) -> None:
    write(tmp_path, "broken.yaml", "agent: {name: A}\nrules:\n  - {id: r, condition: c, action: a, tools: [t]}\n")
    test_file = write(
        tmp_path, "t.yaml", "bundle: broken.yaml\nconversations:\n  - name: x\n    turns:\n      - user: hi\n"
    )

    result = ruche("test", str(test_file))

    assert result.exit_code == 1
    assert "broken.yaml:3: rules[0].tools[0]: unknown tool 't'" in result.stderr


def test_a_recorded_run_replays_the_real_models_answers_without_it(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    test_file = write(
        tiny,
        "recorded.yaml",
        a_test(
            "  - name: a real model's answer\n    turns:\n      - user: tell me about Lyon\n"
            "        expect: {reply: {contains: [Lyon is lovely]}, fields: {city: Lyon}}\n"
        ),
    )
    with ChatServer() as model:
        model.reply_json({"values": {"city": "Lyon"}})
        model.reply("Lyon is lovely in spring.")
        monkeypatch.setenv("RUCHE_LLM_PROVIDER", "openai")
        monkeypatch.setenv("RUCHE_LLM_BASE_URL", model.base_url)
        monkeypatch.setenv("RUCHE_ALLOW_PRIVATE_NETWORK", "1")
        recorded = ruche("test", str(test_file), "--record")
    for name in ("RUCHE_LLM_PROVIDER", "RUCHE_LLM_BASE_URL"):
        monkeypatch.delenv(name)

    replayed = ruche("test", str(test_file))  # the model server is gone: the cassette answers

    assert recorded.exit_code == 0, recorded.output
    cassette = yaml.safe_load((tiny / "recorded.cassette.yaml").read_text())
    assert [exchange["task"] for exchange in cassette["exchanges"]] == ["understanding", "generation"]
    assert replayed.exit_code == 0, replayed.output
    assert "1 passed" in replayed.stdout


def test_a_hand_written_cassette_beside_the_test_is_replayed_and_not_taken_for_a_test(tiny: Path) -> None:
    write(
        tiny,
        "canned.cassette.yaml",
        "exchanges:\n  - {task: understanding, response: {text: '{}'}}\n"
        "  - {task: generation, response: {text: From the cassette.}}\n",
    )
    write(
        tiny,
        "canned.yaml",
        a_test(
            "  - name: canned\n    turns:\n      - user: say something\n"
            "        expect: {reply: {contains: [From the cassette.]}}\n"
        ),
    )

    result = ruche("test", str(tiny / "canned.yaml"), str(tiny / "canned.cassette.yaml"))

    assert result.exit_code == 0, result.output
    assert "1 passed" in result.stdout


def test_record_runs_in_process_only(tiny: Path) -> None:
    test_file = write(tiny, "t.yaml", a_test("  - name: x\n    turns:\n      - user: hi\n"))

    result = ruche("test", str(test_file), "--record", "--url", "http://127.0.0.1:9")

    assert result.exit_code == 2
    assert "--record runs in-process" in result.stderr


def test_a_malformed_cassette_is_one_clear_line_and_exit_2(tiny: Path) -> None:
    write(tiny, "c.cassette.yaml", "exchanges:\n  - {task: generation}\n")
    write(tiny, "c.yaml", a_test("  - name: x\n    turns:\n      - user: hi\n"))

    result = ruche("test", str(tiny / "c.yaml"))

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("ruche: ") and "c.cassette.yaml" in result.stderr
    assert "Traceback" not in result.output


def test_a_scripted_provider_error_ends_in_the_fallback(tiny: Path) -> None:
    test_file = write(
        tiny,
        "e.yaml",
        a_test(
            "  - name: provider down\n    turns:\n      - user: tell me something\n        model:\n"
            "          - {error: the model timed out}\n"
            "        expect: {fallback: true, reply: {contains: [please call us]}}\n"
        ),
    )

    result = ruche("test", str(test_file))

    assert result.exit_code == 0, result.output
