"""push, pull and diff against the app served over real HTTP (moto in-process)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from chalicelib.domain.bundle import parse_bundle
from chalicelib.runtime.services import reset_services
from tests.cli.conftest import EXAMPLES, Stack, ruche

RETAIL = EXAMPLES / "retail-returns.yaml"


def server(stack: Stack) -> list[str]:
    return ["--url", stack.url, "--key", stack.key]


def test_push_publishes_and_prints_each_new_version(stack: Stack) -> None:
    first = ruche("push", str(RETAIL), "--agent", "returns", *server(stack))
    second = ruche("push", str(RETAIL), "--agent", "returns", *server(stack))

    assert first.exit_code == 0, first.output
    assert "published returns version 1" in first.stdout
    assert "published returns version 2" in second.stdout


def test_pull_writes_yaml_that_validates_and_round_trips_through_push(stack: Stack, tmp_path: Path) -> None:
    ruche("push", str(RETAIL), "--agent", "returns", *server(stack))
    pulled = tmp_path / "pulled.yaml"

    assert ruche("pull", "returns", "-o", str(pulled), *server(stack)).exit_code == 0
    assert ruche("validate", str(pulled)).exit_code == 0
    assert ruche("push", str(pulled), "--agent", "returns", *server(stack)).exit_code == 0
    again = ruche("pull", "returns", *server(stack))

    assert again.stdout == pulled.read_text()
    assert yaml.safe_load(again.stdout)["agent"]["name"] == "Northwind returns desk"


def test_pull_gives_back_the_document_as_it_was_pushed_comments_included(stack: Stack) -> None:
    ruche("push", str(RETAIL), "--agent", "returns", *server(stack))

    pulled = ruche("pull", "returns", *server(stack))

    assert pulled.exit_code == 0, pulled.output
    assert pulled.stdout == RETAIL.read_text()
    assert "# Northwind Outfitters — returns desk." in pulled.stdout


def test_pull_of_an_older_version_gives_that_version(stack: Stack, tmp_path: Path) -> None:
    changed = tmp_path / "changed.yaml"
    changed.write_text(RETAIL.read_text().replace("name: Northwind returns desk", "name: Returns v2"))
    ruche("push", str(RETAIL), "--agent", "returns", *server(stack))
    ruche("push", str(changed), "--agent", "returns", *server(stack))

    old = ruche("pull", "returns", "--version", "1", *server(stack))

    assert yaml.safe_load(old.stdout)["agent"]["name"] == "Northwind returns desk"


def test_diff_lists_changed_items_and_a_unified_diff(stack: Stack, tmp_path: Path) -> None:
    ruche("push", str(RETAIL), "--agent", "returns", *server(stack))
    edited = tmp_path / "edited.yaml"
    text = RETAIL.read_text().replace(
        "explain the 30-day return policy in one or two sentences", "explain the 45-day return policy"
    )
    edited.write_text(
        text.replace(
            "  - id: human_request",
            "  - id: loyalty\n    condition: the customer asks "
            "about points\n    action: explain the points\n  - id: human_request",
        )
    )

    result = ruche("diff", str(edited), "--agent", "returns", *server(stack))

    assert result.exit_code == 1, result.output  # differences: exit 1, as `git diff --exit-code`
    assert "~ rule return_policy" in result.stdout
    assert "+ rule loyalty" in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.startswith("-") and "action: explain the 30-day return policy in one" in line for line in lines)
    assert any(line.startswith("+") and line.endswith("action: explain the 45-day return policy") for line in lines)


def test_diff_of_what_is_published_says_there_is_nothing_to_change(stack: Stack) -> None:
    ruche("push", str(RETAIL), "--agent", "returns", *server(stack))

    result = ruche("diff", str(RETAIL), "--agent", "returns", *server(stack))

    assert result.exit_code == 0
    assert "no changes" in result.stdout


def test_diff_against_an_agent_never_published_shows_everything_added(stack: Stack) -> None:
    result = ruche("diff", str(RETAIL), "--agent", "newcomer", *server(stack))

    assert result.exit_code == 1
    assert "+ agent" in result.stdout
    assert "+ rule refund_cap" in result.stdout
    assert "newcomer (not published yet)" in result.stdout


def test_a_push_the_server_refuses_names_the_file_line_and_item(stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.delenv("RUCHE_ALLOW_PRIVATE_NETWORK")
    reset_services()  # the platform now refuses loopback URLs
    absolute = tmp_path / "retail-returns.yaml"
    absolute.write_text(RETAIL.read_text().replace("url: /tools/lookup_order",
                                                   "url: http://127.0.0.1:8765/tools/lookup_order"))

    result = ruche("push", str(absolute), "--agent", "returns", *server(stack))

    assert result.exit_code == 1
    line = next(
        n
        for n, text in enumerate(absolute.read_text().splitlines(), 1)
        if "url: http://127.0.0.1:8765/tools/lookup_order" in text
    )
    assert f"retail-returns.yaml:{line}: tools[0].url:" in result.stderr
    assert "Traceback" not in result.output


def test_an_invalid_bundle_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: {name: A}\nrules:\n  - {id: r1, condition: c, action: a, templates: [nope]}\n")

    # Nothing listens on this address: the command never gets that far.
    result = ruche("push", str(bad), "--agent", "x", "--url", "http://127.0.0.1:9", "--key", "k")

    assert result.exit_code == 1
    assert "bad.yaml:3: rules[0].templates[0]: unknown template 'nope'" in result.stderr


def test_a_wrong_key_is_one_line_and_exit_2(stack: Stack) -> None:
    result = ruche("pull", "returns", "--url", stack.url, "--key", "not-a-key")

    assert result.exit_code == 2
    assert result.stderr.strip() == f"ruche: {stack.url}: the API key was refused (unauthorized)"


def test_a_missing_key_says_where_a_key_comes_from(stack: Stack) -> None:
    result = ruche("pull", "returns", "--url", stack.url)

    assert result.exit_code == 2
    assert "no API key given (--key, RUCHE_API_KEY or the config file)" in result.stderr


def test_an_unknown_agent_is_one_line_and_exit_2(stack: Stack) -> None:
    result = ruche("pull", "nope", *server(stack))

    assert result.exit_code == 2
    assert result.stderr.strip() == "ruche: agent 'nope' not found on this server (not_found)"


def test_an_unreachable_server_is_one_line_and_exit_2() -> None:
    result = ruche("pull", "returns", "--url", "http://127.0.0.1:9", "--key", "k")

    assert result.exit_code == 2
    assert result.stderr.startswith("ruche: cannot reach the server at http://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_server_comes_from_the_environment_then_the_config_file(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ruche("push", str(RETAIL), "--agent", "returns", *server(stack))
    Path(".ruche.toml").write_text(f'url = "{stack.url}"\napi_key = "{stack.key}"\n')
    from_file = ruche("pull", "returns")
    monkeypatch.setenv("RUCHE_API_KEY", "refused-env-key")
    env_wins = ruche("pull", "returns")

    assert from_file.exit_code == 0
    assert "Northwind returns desk" in from_file.stdout
    assert env_wins.exit_code == 2


def test_pull_of_a_folder_bundle_round_trips(stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir()
    document = yaml.safe_load(RETAIL.read_text())
    (folder / "agent.yaml").write_text(yaml.safe_dump({"agent": document["agent"], "fields": document["fields"]}))
    (folder / "items.yaml").write_text(
        yaml.safe_dump({key: document[key] for key in ("tools", "templates", "rules", "scenarios", "channels")})
    )
    ruche("push", str(folder), "--agent", "returns", *server(stack))
    shutil.copy(RETAIL, tmp_path / "single.yaml")

    result = ruche("diff", str(tmp_path / "single.yaml"), "--agent", "returns", *server(stack))

    assert "no changes" in result.stdout
    assert result.exit_code == 0
    # A folder is published as its merged document: pull gives canonical YAML of it.
    pulled = ruche("pull", "returns", *server(stack)).stdout
    assert parse_bundle(yaml.safe_load(pulled)) == parse_bundle(yaml.safe_load(RETAIL.read_text()))
