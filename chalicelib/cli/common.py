"""What every `ruche` command shares: exit codes, the one-line failure, and the server settings.

Exit codes: 0 success, 1 a failed check (an invalid bundle, a failing conversation test),
2 a usage or connection error (a missing option, an unreachable server, a refused key, an unknown
agent, a malformed test file). A failure is always one clear line on stderr, never a traceback.

The server address and API key come from flags (--url, --key), then the environment (RUCHE_URL,
RUCHE_API_KEY), then a small TOML file: ./.ruche.toml, else ~/.config/ruche/config.toml, with
`url = "..."` and `api_key = "..."`.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

CHECK_FAILED = 1
USAGE_ERROR = 2

CONFIG_FILES = (Path(".ruche.toml"), Path("~/.config/ruche/config.toml"))



class CliFailure(click.ClickException):
    """One line on stderr and an exit code: 1 for a failed check, 2 for a usage or connection error."""

    def __init__(self, message: str, exit_code: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance

    def show(self, file: Any = None) -> None:
        click.echo(f"ruche: {self.format_message()}", err=True)


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    api_key: str | None


def config_file_values(paths: tuple[Path, ...] = CONFIG_FILES) -> tuple[dict[str, Any], Path | None]:
    """The first config file that exists, read with tomllib. Raises CliFailure for a malformed one."""
    for candidate in paths:
        path = candidate.expanduser()
        if not path.is_file():
            continue
        try:
            return tomllib.loads(path.read_text(encoding="utf-8")), path
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CliFailure(f"{path}: not a valid TOML config file ({exc})") from None
    return {}, None


def resolve_server(
    url: str | None,
    key: str | None,
    environ: Mapping[str, str] | None = None,
    paths: tuple[Path, ...] = CONFIG_FILES,
) -> Server:
    """Flags, then RUCHE_URL / RUCHE_API_KEY, then the config file. Raises CliFailure without a URL."""
    env = os.environ if environ is None else environ
    values, source = config_file_values(paths)
    chosen_url = url or env.get("RUCHE_URL") or _text(values.get("url"))
    chosen_key = key or env.get("RUCHE_API_KEY") or _text(values.get("api_key") or values.get("key"))
    if not chosen_url:
        raise CliFailure(
            'no server address: pass --url, set RUCHE_URL, or put `url = "..."` in '
            "./.ruche.toml or ~/.config/ruche/config.toml"
        )
    if not chosen_url.startswith(("http://", "https://")):
        where = "--url" if url else ("RUCHE_URL" if env.get("RUCHE_URL") else str(source))
        raise CliFailure(f"{where}: the server address must start with http:// or https:// (got {chosen_url!r})")
    return Server(url=chosen_url.rstrip("/"), api_key=chosen_key or None)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ServerFlags:
    """--url and --key as given. resolve() completes them from $RUCHE_URL, $RUCHE_API_KEY and the
    config file, and fails (CliFailure) when no address is found anywhere."""

    url: str | None = None
    key: str | None = None

    def resolve(self) -> Server:
        return resolve_server(self.url, self.key)


def server_flags(*, url_help: str, key_help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add --url and --key to a command; it receives them as one `server` (ServerFlags)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def with_server(*args: Any, url: str | None, key: str | None, **kwargs: Any) -> None:
            command(*args, server=ServerFlags(url, key), **kwargs)

        with_options = click.option("--key", "key", metavar="KEY", help=key_help)(with_server)
        return click.option("--url", "url", metavar="URL", help=url_help)(with_options)

    return decorate


server_options = server_flags(
    url_help="Server address, e.g. http://127.0.0.1:8000 [default: $RUCHE_URL, then the config file].",
    key_help="Tenant API key [default: $RUCHE_API_KEY, then the config file].",
)
"""Add --url and --key to a command that talks to a running stack (as `server`, ServerFlags)."""
