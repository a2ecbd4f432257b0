"""`ruche init NAME`: a starter bundle that validates and a conversation test that passes."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import ruche


def test_init_writes_a_bundle_and_a_conversation_test_that_passes(tmp_path: Path) -> None:
    result = ruche("init", "front-desk", "--dir", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert ruche("validate", str(tmp_path / "front-desk.yaml")).exit_code == 0
    tested = ruche("test", str(tmp_path / "tests" / "front-desk"))
    assert tested.exit_code == 0, tested.output
    assert "3 passed" in tested.stdout


def test_init_never_overwrites_and_refuses_an_invalid_name(tmp_path: Path) -> None:
    (tmp_path / "front-desk.yaml").write_text("mine\n")

    again = ruche("init", "front-desk", "--dir", str(tmp_path))
    bad = ruche("init", "no spaces", "--dir", str(tmp_path))

    assert again.exit_code == 2 and "not overwriting" in again.stderr
    assert (tmp_path / "front-desk.yaml").read_text() == "mine\n"
    assert bad.exit_code == 2 and "not a valid agent id" in bad.stderr
