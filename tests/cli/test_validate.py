"""`ruche validate`: the API's validation, offline, with every problem at its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chalicelib.cli.bundle_files import split_path
from tests.cli.conftest import EXAMPLES, ruche

BUNDLE = """\
agent:
  name: Shop
fields:
  - name: email
    type: email
templates:
  - id: refund_fallback
    mode: fallback
    text: Sorry.
rules:
  - id: ok
    condition: c
    action: a
  - id: broken
    condition: c
    action: a
    templates: [refund_fb]
    tools: [missing_tool]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_the_example_bundles_are_valid(path: Path) -> None:
    result = ruche("validate", str(path))

    assert result.exit_code == 0
    assert "valid bundle for" in result.stdout


def test_every_problem_is_listed_at_once_with_file_line_and_item(tmp_path: Path) -> None:
    bundle = write(tmp_path, "retail.yaml", BUNDLE)

    result = ruche("validate", str(bundle))

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"ruche: {bundle}: 2 problems"
    assert f"{bundle}:17: rules[1].templates[0]: unknown template 'refund_fb'" in lines
    assert f"{bundle}:18: rules[1].tools[0]: unknown tool 'missing_tool'" in lines


def test_a_schema_error_points_at_the_offending_key(tmp_path: Path) -> None:
    bundle = write(tmp_path, "b.json", '{"agent": {"name": "A"},\n "fields": [{"name": "x",\n "type": "colour"}]}')

    result = ruche("validate", str(bundle))

    assert result.exit_code == 1
    assert f"{bundle}:3: fields[0].type: Input should be" in result.stderr


def test_a_folder_of_files_forms_one_bundle_merged_by_top_level_key(tmp_path: Path) -> None:
    document = yaml.safe_load((EXAMPLES / "retail-returns.yaml").read_text())
    write(
        tmp_path,
        "agent.yaml",
        yaml.safe_dump(
            {
                "agent": document["agent"],
                "fields": document["fields"],
                "channels": {"twilio": document["channels"]["twilio"]},
            }
        ),
    )
    write(tmp_path, "rules.yaml", yaml.safe_dump({"rules": document["rules"][:3]}))
    write(tmp_path, "more/rules.yaml", yaml.safe_dump({"rules": document["rules"][3:], "tools": document["tools"]}))
    write(
        tmp_path,
        "scenarios/returns.yaml",
        yaml.safe_dump(
            {
                "scenarios": document["scenarios"],
                "templates": document["templates"],
                "channels": {"webchat": document["channels"]["webchat"]},
            }
        ),
    )
    write(tmp_path, "tests/conversation.yaml", "conversations: not a bundle file\n")
    write(tmp_path, "x.cassette.yaml", "exchanges: []\n")

    result = ruche("validate", str(tmp_path))

    assert result.exit_code == 0, result.output
    counts = (f"({len(document['rules'])} rules, {len(document['scenarios'])} scenarios, "
              f"{len(document['templates'])} templates, {len(document['tools'])} tools, "
              f"{len(document['fields'])} fields)")
    assert counts in result.stdout


def test_a_problem_in_a_folder_bundle_names_the_file_it_is_in(tmp_path: Path) -> None:
    write(tmp_path, "agent.yaml", "agent: {name: Shop}\n")
    write(tmp_path, "rules/a.yaml", "rules:\n  - {id: one, condition: c, action: a}\n")
    write(
        tmp_path,
        "rules/b.yaml",
        "# second file\nrules:\n  - {id: two, condition: c, action: a}\n"
        "  - {id: three, condition: c, action: a, depends_on: [four]}\n",
    )

    result = ruche("validate", str(tmp_path))

    assert result.exit_code == 1
    assert f"{tmp_path / 'rules/b.yaml'}:4: rules[2].depends_on[0]: unknown rule 'four'" in result.stderr


def test_a_section_written_twice_in_a_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "agent: {name: Shop}\n")
    write(tmp_path, "b.yaml", "agent:\n  name: Other\n")
    write(tmp_path, "c.yaml", "agent: [not, a, mapping]\n")

    result = ruche("validate", str(tmp_path))

    assert result.exit_code == 1
    assert f"{tmp_path / 'b.yaml'}:2: agent.name: also defined in {tmp_path / 'a.yaml'}" in result.stderr


def test_a_section_of_another_shape_in_a_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "agent: {name: Shop}\nrules: []\n")
    write(tmp_path, "b.yaml", "rules: {not: a list}\n")

    result = ruche("validate", str(tmp_path))

    assert result.exit_code == 1
    assert "b.yaml:1: rules: also defined in" in result.stderr


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.yaml": "agent: {name: [\n"}, "a.yaml:2: not valid YAML"),
        ({"a.yaml": "- a list\n"}, "a.yaml:1: an agent bundle must be a mapping"),
        ({"a.yaml": "agent: {name: A}\n", "b.yaml": "- a list\n"}, "b.yaml:1: each file of a bundle folder"),
    ],
)
def test_unreadable_bundles_say_which_file_and_line(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    target = tmp_path if len(files) > 1 else tmp_path / "a.yaml"

    result = ruche("validate", str(target))

    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_path_or_an_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    missing = ruche("validate", str(tmp_path / "nope.yaml"))
    empty = ruche("validate", str(tmp_path))

    assert (missing.exit_code, empty.exit_code) == (2, 2)
    assert "no such file or folder" in missing.stderr
    assert "no .yaml, .yml or .json files" in empty.stderr


def test_an_empty_file_in_a_folder_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "agent.yaml", "agent: {name: Shop}\n")
    write(tmp_path, "empty.yaml", "")

    assert ruche("validate", str(tmp_path)).exit_code == 0


def test_item_paths_split_into_keys_and_indexes() -> None:
    assert split_path("rules[3].templates[0]") == ("rules", 3, "templates", 0)
    assert split_path("channels.twilio.config") == ("channels", "twilio", "config")
    assert split_path("") == ()
