"""`ruche test`: find conversation test files, play them, and report (summary table, JUnit XML)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click

from chalicelib.cli.client import ApiClient
from chalicelib.cli.common import CHECK_FAILED, CliFailure, ServerFlags, server_flags
from chalicelib.cli.suite import ConversationReport, run_in_process, run_remote
from chalicelib.cli.testfile import CASSETTE_SUFFIX, LoadedTestFile, load_test_file

SUFFIXES = (".yaml", ".yml")


@click.command("test", short_help="Run conversation tests (in-process by default).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@server_flags(
    url_help="Run against this running stack instead of in-process (key: --key, $RUCHE_API_KEY or the config file).",
    key_help="Tenant API key, with --url.",
)
@click.option("--agent", "agent_id", metavar="ID", help="With --url: the agent to talk to [default: the file's].")
@click.option(
    "--record",
    is_flag=True,
    help="In-process, call the provider the config names (RUCHE_LLM_PROVIDER, ... and the bundle) "
    "and record every exchange to FILE.cassette.yaml beside each test; later runs replay it.",
)
@click.option(
    "--junit-xml",
    "junit_xml",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results as JUnit XML to this file, for CI.",
)
def test_command(
    *,
    paths: tuple[Path, ...],
    server: ServerFlags,
    agent_id: str | None,
    record: bool,
    junit_xml: Path | None,
) -> None:
    """Run conversation tests: YAML files of scripted turns with expectations.

    PATHS are test files or folders of them (searched recursively; *.cassette.yaml are
    cassettes, not tests). By default each conversation runs IN-PROCESS against the file's
    `bundle:` with the offline provider: no server, no AWS. Tools are answered by the file's
    `tools:` stubs; a turn's `model:` scripts its LLM calls. Exit 1 when a test fails.
    """
    if record and server.url:
        raise CliFailure("--record runs in-process: leave out --url")
    files = [load_test_file(path) for path in discover(paths)]
    if not files:
        raise CliFailure(f"no test files (*.yaml) under {', '.join(map(str, paths))}")
    client = ApiClient(server.resolve()) if server.url else None
    total = sum(len(loaded.spec.conversations) for loaded in files)
    reports: list[ConversationReport] = []
    with click.progressbar(length=total, label="conversations", file=sys.stderr, show_pos=True) as bar:
        for loaded in files:
            for report in _play(loaded, client, agent_id, record=record):
                reports.append(report)
                bar.update(1)
    _show_failures(reports)
    _show_summary(reports)
    if junit_xml is not None:
        write_junit(reports, junit_xml)
    if any(report.status in ("failed", "error") for report in reports):
        raise CliFailure(
            f"{sum(r.status in ('failed', 'error') for r in reports)} of {len(reports)} conversations failed",
            CHECK_FAILED,
        )


def discover(paths: tuple[Path, ...]) -> list[Path]:
    """Test files under `paths`, sorted; cassettes are left out."""
    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found += [
            file
            for file in candidates
            if file.is_file() and file.suffix in SUFFIXES and not file.name.endswith(CASSETTE_SUFFIX)
        ]
    return list(dict.fromkeys(found))


def _play(
    loaded: LoadedTestFile, client: ApiClient | None, agent_id: str | None, *, record: bool
) -> Iterator[ConversationReport]:
    if client is not None:
        return run_remote(loaded, client, agent_id)
    return run_in_process(loaded, record=record)


def _show_failures(reports: list[ConversationReport]) -> None:
    for report in reports:
        if report.status == "error":
            click.secho(f"\nERROR {report.file}:{report.line}: {report.name}", fg="red", bold=True)
            click.echo(f"  {report.reason}")
        if report.status != "failed":
            continue
        click.secho(f"\nFAILED {report.file}:{report.line}: {report.name}", fg="red", bold=True)
        for turn in report.failed_turns:
            click.echo(f"  turn {turn.number}: user: {turn.message}")
            for miss in turn.misses:
                click.secho(f"    ✗ {miss}", fg="red")
            if turn.trace:
                click.echo("    trace:")
                click.echo("\n".join(f"      {line}" for line in turn.trace.splitlines()))


def _show_summary(reports: list[ConversationReport]) -> None:
    width = max([len("conversation"), *(len(f"{Path(r.file).name}: {r.name}") for r in reports)])
    click.echo()
    click.echo(f"{'conversation':<{width}}  {'turns':>5}  result")
    click.echo(f"{'-' * width}  {'-' * 5}  ------")
    colours = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow"}
    for report in reports:
        label = f"{Path(report.file).name}: {report.name}"
        result = report.status + (f" ({report.reason})" if report.status == "skipped" else "")
        click.echo(f"{label:<{width}}  {len(report.turns):>5}  " + click.style(result, fg=colours[report.status]))
    counts = Counter(report.status for report in reports)
    click.echo(
        "\n"
        + ", ".join(
            f"{counts[status]} {status}" for status in ("passed", "failed", "error", "skipped") if counts[status]
        )
    )


def write_junit(reports: list[ConversationReport], path: Path) -> None:
    """One <testsuite> per test file, one <testcase> per conversation."""
    root = ET.Element("testsuites", name="ruche")
    for file in dict.fromkeys(report.file for report in reports):
        mine = [report for report in reports if report.file == file]
        counts = Counter(report.status for report in mine)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=file,
            tests=str(len(mine)),
            failures=str(counts["failed"]),
            errors=str(counts["error"]),
            skipped=str(counts["skipped"]),
            time=f"{sum(r.duration_s for r in mine):.3f}",
        )
        for report in mine:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=Path(file).stem,
                name=report.name,
                file=file,
                line=str(report.line),
                time=f"{report.duration_s:.3f}",
            )
            if report.status == "failed":
                misses = [f"turn {turn.number}: {miss}" for turn in report.failed_turns for miss in turn.misses]
                failure = ET.SubElement(case, "failure", message=misses[0])
                failure.text = "\n".join(misses + [turn.trace for turn in report.failed_turns if turn.trace])
            elif report.status == "error":
                ET.SubElement(case, "error", message=report.reason)
            elif report.status == "skipped":
                ET.SubElement(case, "skipped", message=report.reason)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
