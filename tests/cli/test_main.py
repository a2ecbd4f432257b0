"""The `ruche` group: help that reads well, settings resolution, errors as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.cli.common import CliFailure, resolve_server
from tests.cli.conftest import ruche

COMMANDS = ("validate", "push", "pull", "diff", "chat", "explain", "test")


def test_help_lists_every_command_with_a_one_line_summary() -> None:
    result = ruche("--help")

    assert result.exit_code == 0
    for command in COMMANDS:
        assert f"  {command} " in result.stdout
    assert "Exit codes: 0 ok, 1 a failed check" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = ruche(command, "--help")

    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: ruche {command} ")


def test_a_missing_argument_is_a_usage_error() -> None:
    result = ruche("push")

    assert result.exit_code == 2
    assert "Missing argument 'PATH'" in result.stderr


def test_a_server_command_without_an_address_says_where_one_comes_from() -> None:
    result = ruche("pull", "shop")

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        'ruche: no server address: pass --url, set RUCHE_URL, or put `url = "..."` '
        "in ./.ruche.toml or ~/.config/ruche/config.toml"
    )


def test_flags_win_over_the_environment_which_wins_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('url = "http://file:1"\napi_key = "file-key"\n')
    env = {"RUCHE_URL": "http://env:2", "RUCHE_API_KEY": "env-key"}

    assert resolve_server("http://flag:3/", "flag-key", env, (config,)).url == "http://flag:3"
    assert resolve_server(None, None, env, (config,)).api_key == "env-key"
    from_file = resolve_server(None, None, {}, (tmp_path / "absent.toml", config))
    assert (from_file.url, from_file.api_key) == ("http://file:1", "file-key")


def test_the_user_config_file_is_read_when_there_is_no_project_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    user = Path.home() / ".config" / "ruche" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('url = "http://home:4"\n')

    assert resolve_server(None, None, {}).url == "http://home:4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("url = [", "not a valid TOML config file"),
        ('url = "ftp://x"', "the server address must start with http:// or https://"),
    ],
)
def test_a_bad_config_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)

    with pytest.raises(CliFailure, match=message) as caught:
        resolve_server(None, None, {}, (config,))
    assert caught.value.exit_code == 2


def test_a_bad_url_flag_is_named() -> None:
    result = ruche("pull", "shop", "--url", "localhost:8000")

    assert result.exit_code == 2
    assert "--url: the server address must start with http:// or https://" in result.stderr


def test_an_unexpected_error_is_one_line_unless_debugging(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "b.yaml"
    bundle.write_text("agent: {name: A}\n")

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("chalicelib.cli.authoring.load_bundle", explode)
    quiet = ruche("validate", str(bundle))

    assert quiet.exit_code == 2
    assert quiet.stderr.strip() == "ruche: internal error: RuntimeError: boom (RUCHE_DEBUG=1 shows where)"
    monkeypatch.setenv("RUCHE_DEBUG", "1")
    with pytest.raises(RuntimeError):
        ruche("validate", str(bundle))


def test_the_installed_console_script_runs() -> None:
    import subprocess
    import sys

    script = Path(sys.executable).parent / "ruche"
    finished = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)

    assert finished.returncode == 0
    assert finished.stdout.startswith("Usage: ruche [OPTIONS] COMMAND [ARGS]...")
