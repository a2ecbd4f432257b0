"""Agent-as-code commands: validate a bundle offline, push it, pull it back, diff it with the server."""

from __future__ import annotations

import difflib
import urllib.parse
from pathlib import Path
from typing import Any

import click

from chalicelib.cli.bundle_files import BundleSource, canonical_yaml, load_bundle, problems_text
from chalicelib.cli.client import ApiClient, ApiError, YamlText
from chalicelib.cli.common import CHECK_FAILED, CliFailure, ServerFlags, server_options
from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.errors import InvalidInput

ITEM_LISTS = {"fields": "name", "tools": "id", "templates": "id", "rules": "id", "scenarios": "id"}
BUNDLE_PATH = click.Path(exists=False, path_type=Path)


def agent_path(agent_id: str) -> str:
    return f"/v1/agents/{urllib.parse.quote(agent_id, safe='')}"


@click.command(short_help="Check a bundle offline (errors with file:line).")
@click.argument("path", type=BUNDLE_PATH)
def validate(path: Path) -> None:
    """Check the bundle at PATH offline, with exactly the validation the API runs.

    PATH is a YAML or JSON file, or a folder of YAML files that together form one bundle
    (e.g. agent.yaml + rules.yaml + scenarios/*.yaml, merged by top-level key). Every problem
    is listed as FILE:LINE: ITEM: MESSAGE. Exit 1 when the bundle is invalid.

    Not checked offline: tool and LLM URLs against the server's network policy (push reports them).
    """
    bundle, _ = load_bundle(path)
    click.echo(f"{path}: valid bundle for {bundle.agent.name!r} ({_summary(bundle)})")


@click.command(short_help="Publish a bundle as a new version of an agent.")
@click.argument("path", type=BUNDLE_PATH)
@click.option("--agent", "agent_id", required=True, metavar="ID", help="The agent to publish to.")
@click.option(
    "--if-match",
    "if_match",
    type=int,
    metavar="VERSION",
    help="Publish only if the latest version is still VERSION (no lost updates).",
)
@server_options
def push(path: Path, agent_id: str, if_match: int | None, server: ServerFlags) -> None:
    """Validate the bundle at PATH and publish it as a new version of agent ID (PUT /v1/agents/ID).

    A single YAML file is sent as it is written, so `pull` gives it back with its comments.
    """
    bundle, source = load_bundle(path)
    client = ApiClient(server.resolve())
    headers = {"If-Match": str(if_match)} if if_match is not None else None
    as_written = path.is_file() and path.suffix in (".yaml", ".yml")
    body = YamlText(path.read_text(encoding="utf-8")) if as_written else bundle.to_document()
    try:
        answer = client.put(agent_path(agent_id), body, headers=headers)
    except ApiError as exc:
        raise _explained(exc, source, agent_id) from None
    click.echo(f"published {agent_id} version {answer.get('version')} ({_summary(bundle)})")


@click.command(short_help="Fetch a published bundle as YAML.")
@click.argument("agent_id", metavar="ID")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the bundle to FILE instead of standard output.",
)
@click.option("--version", "version", type=click.IntRange(min=1), help="An older version instead of the latest.")
@server_options
def pull(agent_id: str, output: Path | None, version: int | None, server: ServerFlags) -> None:
    """Fetch agent ID's published bundle as YAML that `validate` and `push` accept: the document as
    it was published, comments included (canonical YAML when it was published as JSON)."""
    client = ApiClient(server.resolve())
    query = str(version) if version is not None else None
    try:
        document = client.get(agent_path(agent_id), version=query, format="source")
    except ApiError as exc:
        raise _explained(exc, None, agent_id) from None
    text = str(document.get("text") or "") if isinstance(document, dict) else ""
    if not text:  # a server that predates format=source answers the bundle itself
        text = canonical_yaml(document)
    elif not text.endswith("\n"):
        text += "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {agent_id} to {output}", err=True)


@click.command()
@click.argument("path", type=BUNDLE_PATH)
@click.option("--agent", "agent_id", required=True, metavar="ID", help="The published agent to compare with.")
@server_options
def diff(path: Path, agent_id: str, server: ServerFlags) -> None:
    """Show what pushing the bundle at PATH to agent ID would change.

    Prints the items added, removed and changed, then a unified diff of the canonical YAML.
    Exits 1 when there are differences and 0 when there are none, like `git diff --exit-code`.
    """
    bundle, _ = load_bundle(path)
    client = ApiClient(server.resolve())
    try:
        published: dict[str, Any] = client.get(agent_path(agent_id)) or {}
        label = f"{agent_id} (published)"
    except ApiError as exc:
        if exc.status != 404:
            raise _explained(exc, None, agent_id) from None
        published, label = {}, f"{agent_id} (not published yet)"
    local = bundle.to_document()
    changes = item_changes(published, local)
    if not changes:
        click.echo(f"no changes: {path} is what {agent_id} publishes")
        return
    for change in changes:
        click.echo(change)
    before = canonical_yaml(published).splitlines(keepends=True) if published else []
    after = canonical_yaml(local).splitlines(keepends=True)
    for line in difflib.unified_diff(before, after, fromfile=label, tofile=str(path)):
        click.secho(line, nl=False, fg=_colour(line))
    raise click.exceptions.Exit(CHECK_FAILED)


def item_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per added (+), removed (-) or changed (~) item, section by section."""
    lines: list[str] = []
    for section in ("agent", "channels"):
        if before.get(section) != after.get(section):
            mark = "+" if section not in before else ("-" if section not in after else "~")
            lines.append(f"{mark} {section}")
    for section, key in ITEM_LISTS.items():
        old = {item.get(key): item for item in before.get(section) or []}
        new = {item.get(key): item for item in after.get(section) or []}
        lines += [f"+ {section[:-1]} {name}" for name in new if name not in old]
        lines += [f"- {section[:-1]} {name}" for name in old if name not in new]
        lines += [f"~ {section[:-1]} {name}" for name in new if name in old and new[name] != old[name]]
        if set(old) == set(new) and list(old) != list(new):
            lines.append(f"~ {section} (order)")
    return lines


def _colour(line: str) -> str | None:
    if line.startswith(("+++", "---")):
        return None
    return {"+": "green", "-": "red", "@": "cyan"}.get(line[:1])


def _summary(bundle: AgentBundle) -> str:
    counts = [
        (len(bundle.rules), "rule"),
        (len(bundle.scenarios), "scenario"),
        (len(bundle.templates), "template"),
        (len(bundle.tools), "tool"),
        (len(bundle.fields), "field"),
    ]
    return ", ".join(f"{count} {noun}{'' if count == 1 else 's'}" for count, noun in counts)


def _explained(error: ApiError, source: BundleSource | None, agent_id: str) -> CliFailure:
    """An API error in the user's terms: a 422 mapped to file lines, a 404 naming the agent."""
    if error.status == 422 and source is not None:
        problem = InvalidInput(error.api_message, **error.details)
        return CliFailure(f"the server refused the bundle:\n{problems_text(source, problem)}", CHECK_FAILED)
    if error.status == 404:
        return CliFailure(f"agent {agent_id!r} not found on this server ({error.code})")
    return error
