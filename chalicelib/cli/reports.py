"""`ruche usage` and `ruche insights AGENT`: the usage and insights answers as tables, or --json.

Both read the HTTP API (GET /v1/usage, GET /v1/agents/{id}/insights); the range defaults to this
UTC month so far. --json prints the API's answer unchanged, for scripts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import click

from chalicelib.cli.client import ApiClient
from chalicelib.cli.common import ServerFlags, server_options
from chalicelib.domain.usage import COUNTERS


def _range_options(command: Any) -> Any:
    command = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")(command)
    command = click.option("--to", "end", metavar="YYYY-MM-DD", help="Last day, inclusive [default: today, UTC].")(
        command)
    return click.option("--from", "start", metavar="YYYY-MM-DD",
                        help="First day [default: the first of this month, UTC].")(command)


def _days(start: str | None, end: str | None) -> tuple[str, str]:
    today = dt.datetime.now(dt.UTC).date()
    return start or today.replace(day=1).isoformat(), end or today.isoformat()


@click.command(short_help="Turns, LLM calls and tokens per day and agent.")
@click.option("--agent", "agent_id", metavar="ID", help="Only this agent.")
@_range_options
@server_options
def usage(agent_id: str | None, *, start: str | None, end: str | None, as_json: bool, server: ServerFlags) -> None:
    """The tenant's usage counters per day and agent, with totals."""
    first, last = _days(start, end)
    answer = ApiClient(server.resolve()).get("/v1/usage", **{"from": first, "to": last, "agent_id": agent_id})
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    rows = [[day["date"], day["agent_id"], *(day[name] for name in COUNTERS)] for day in answer["days"]]
    rows.append(["total", "", *(answer["totals"][name] for name in COUNTERS)])
    click.echo(table(["date", "agent", *COUNTERS], rows))


@click.command(short_help="Fallback and regeneration rates, violations, funnel, unmatched turns.")
@click.argument("agent_id")
@_range_options
@server_options
def insights(agent_id: str, *, start: str | None, end: str | None, as_json: bool, server: ServerFlags) -> None:
    """Quality insights of one agent over a range of days."""
    first, last = _days(start, end)
    found = ApiClient(server.resolve()).get(f"/v1/agents/{agent_id}/insights", **{"from": first, "to": last})
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"{found['agent_id']} from {found['from']} to {found['to']}: {found['turns']} turns, "
               f"fallback rate {found['fallback_rate']:.1%}, regeneration rate {found['regeneration_rate']:.1%}")
    for title, key_name in (("violations", "violations"), ("rules applied", "rules_applied")):
        click.echo(f"\n{title}")
        click.echo(table(["rule", "count"], [[item["rule_id"], item["count"]] for item in found[key_name]]))
    click.echo("\nscenario funnel")
    click.echo(table(["scenario", "step", "entered", "completed", "left"],
                     [[scenario["scenario_id"], step["step_id"], step["entered"], step["completed"], step["left"]]
                      for scenario in found["scenario_funnel"] for step in scenario["steps"]]))
    unmatched = found["unmatched"]
    click.echo(f"\nunmatched turns: {unmatched['turns']}")
    for sample in unmatched["samples"]:
        click.echo(f"  {sample['at']}  {sample['session_id']}  {sample['message']}")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain aligned columns: text left, numbers right; "(none)" for no rows."""
    if not rows:
        return "(none)"
    cells = [[str(value) for value in row] for row in [header, *rows]]
    widths = [max(len(row[index]) for row in cells) for index in range(len(header))]
    numeric = [all(isinstance(row[index], int) for row in rows) for index in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) if is_number else cell.ljust(width)
                               for cell, width, is_number in zip(row, widths, numeric, strict=True)).rstrip()
                     for row in cells)
