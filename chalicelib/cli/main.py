"""The `ruche` command: agent-as-code, conversation tests, and "why this reply"."""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from chalicelib.cli.authoring import diff, pull, push, validate
from chalicelib.cli.common import USAGE_ERROR, CliFailure
from chalicelib.cli.conversation import chat, explain
from chalicelib.cli.reports import insights, usage
from chalicelib.cli.starter import init
from chalicelib.cli.testing import test_command
from chalicelib.domain.errors import InvalidInput, RucheError
from chalicelib.runtime.log import logger as engine_logger

EPILOG = """\b
Server commands (push, pull, diff, chat, explain, usage, insights, test --url) find the server
address and key in --url/--key, then RUCHE_URL/RUCHE_API_KEY, then ./.ruche.toml
or ~/.config/ruche/config.toml (url = "...", api_key = "...").

Exit codes: 0 ok, 1 a failed check (invalid bundle, failing test), 2 a usage or
connection error. Set RUCHE_DEBUG=1 to see a traceback for an internal error."""


class RucheGroup(click.Group):
    """Turns any error that escapes a command into one line on stderr, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except InvalidInput as exc:
            raise CliFailure(_problems(exc), USAGE_ERROR) from None
        except RucheError as exc:
            raise CliFailure(f"{exc.message} ({exc.code})", USAGE_ERROR) from None
        except Exception as exc:
            if os.environ.get("RUCHE_DEBUG"):
                raise
            raise CliFailure(
                f"internal error: {type(exc).__name__}: {exc} (RUCHE_DEBUG=1 shows where)", USAGE_ERROR
            ) from None


@click.group("ruche", cls=RucheGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ruche", prog_name="ruche")
def cli() -> None:
    """Ruche: write agents as code, test their conversations, and explain their replies.

    \b
    ruche init NAME                  write a starter bundle and a passing conversation test
    ruche validate PATH              check a bundle offline, errors with file:line
    ruche push PATH --agent ID       publish it as a new version
    ruche pull ID [-o FILE]          fetch the published bundle as YAML
    ruche diff PATH --agent ID       what a push would change
    ruche chat ID                    talk to the agent in the terminal
    ruche explain SESSION [TURN] --agent ID   why the agent replied that
    ruche test PATH                  run conversation tests (in-process by default)
    ruche usage [--from D --to D]    usage counters per day and agent (--json)
    ruche insights ID                rates, violations, scenario funnel (--json)
    """
    quiet_engine_logs()


def quiet_engine_logs() -> None:
    """The engine logs JSON lines to stdout for CloudWatch; in a terminal only errors are worth a line."""
    prefix = engine_logger.service
    for name in [
        prefix,
        *(name for name in logging.root.manager.loggerDict if name.startswith(f"{prefix}.")),
    ]:
        logging.getLogger(name).setLevel(logging.ERROR)


def _problems(error: InvalidInput) -> str:
    problems = error.details.get("errors") or []
    if not problems:
        return error.message
    return "; ".join(
        f"{item.get('path')}: {item.get('message')}" if item.get("path") else str(item.get("message"))
        for item in problems
    )


for command in (init, validate, push, pull, diff, chat, explain, test_command, usage, insights):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point (pyproject: ruche = "chalicelib.cli.main:main")."""
    cli(prog_name="ruche")
