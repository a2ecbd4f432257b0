"""The AWS package: chalice's template with infra/ merged in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from infra.package import merged_template, package
from tests.conftest import ROOT


def test_the_merged_template_turns_on_partial_batch_responses_for_the_turn_worker() -> None:
    template = merged_template("prod")
    events = template["Resources"]["TurnWorker"]["Properties"]["Events"]
    assert events["TurnWorkerSqsEventSource"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert template["Parameters"]["Stage"]["Default"] == "prod"


def test_chalice_package_output_keeps_the_tables_queues_and_batch_item_failures(tmp_path: Path) -> None:
    # A copy of the project with no requirements, so packaging needs no download.
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments"))
    (project / "requirements.txt").write_text("")
    sam = json.loads(package("prod", tmp_path / "out", project_dir=project).read_text())
    resources = sam["Resources"]
    assert {"MainTable", "IdempotencyTable", "TurnQueue", "TurnDeadLetterQueue"} <= set(resources)
    worker = resources["TurnWorker"]["Properties"]["Events"]["TurnWorkerSqsEventSource"]["Properties"]
    assert worker["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "ruche-prod-turns.fifo" in json.dumps(worker["Queue"])
