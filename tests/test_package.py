"""The AWS package: chalice's template with infra/ merged in, our modules' bytecode in the zip."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.package import cold_start_sources, drop_runtime_provided, drop_test_suites, merged_template, package
from tests.conftest import ROOT


def test_the_merged_template_turns_on_partial_batch_responses_for_the_turn_worker() -> None:
    template = merged_template("prod")
    events = template["Resources"]["TurnWorker"]["Properties"]["Events"]
    assert events["TurnWorkerSqsEventSource"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert template["Parameters"]["Stage"]["Default"] == "prod"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make package`'s output folder (sam.json, deployment.zip) for a copy of the project with no
    requirements, so packaging needs no download. Built once for the tests that read it."""
    scratch = tmp_path_factory.mktemp("package")
    project = scratch / "project"
    project.mkdir()
    shutil.copy(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments"))
    (project / "requirements.txt").write_text("")
    return package("prod", scratch / "out", project_dir=project).parent


def test_chalice_package_output_keeps_the_tables_queues_and_batch_item_failures(packaged: Path) -> None:
    sam_path = packaged / "sam.json"
    lint = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(sam_path)],
                          capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    sam = json.loads(sam_path.read_text())
    resources = sam["Resources"]
    assert {"MainTable", "IdempotencyTable", "TurnQueue", "TurnDeadLetterQueue"} <= set(resources)
    worker = resources["TurnWorker"]["Properties"]["Events"]["TurnWorkerSqsEventSource"]["Properties"]
    assert worker["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "ruche-prod-turns.fifo" in json.dumps(worker["Queue"])
    # An unknown path answers our 404 envelope, not API Gateway's 403 "Missing Authentication Token".
    unknown = resources["UnknownRouteResponse"]["Properties"]
    assert (unknown["ResponseType"], unknown["StatusCode"]) == ("MISSING_AUTHENTICATION_TOKEN", "404")
    assert json.loads(unknown["ResponseTemplates"]["application/json"])["error"]["code"] == "not_found"
    assert unknown["RestApiId"] == {"Ref": "RestAPI"}


def test_the_package_ships_our_modules_compiled_so_a_cold_start_compiles_none_of_them(
        packaged: Path, tmp_path: Path) -> None:
    task = tmp_path / "task"
    with zipfile.ZipFile(packaged / "deployment.zip") as archive:
        names = set(archive.namelist())
        archive.extractall(task)
    sources = [name for name in names if name.endswith(".py") and name.startswith(("app.py", "chalicelib/"))]
    assert len(sources) > 50 and all(importlib.util.cache_from_source(name) in names for name in sources)

    # As on Lambda: nothing may be written next to the package, and the modules still come compiled.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(task)}
    env.pop("AWS_ENDPOINT_URL", None)
    loaded = subprocess.run([sys.executable, "-v", "-c", "import app"], cwd=task, env=env, capture_output=True,
                            text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    said = loaded.stderr.splitlines()
    from_bytecode = {line.split("'")[1] for line in said if line.startswith("# code object from '")}
    assert str(task / importlib.util.cache_from_source("app.py")) in from_bytecode
    assert str(task / importlib.util.cache_from_source("chalicelib/runtime/gateway.py")) in from_bytecode


def test_the_merged_template_alarms_on_errors_and_throttles_of_both_functions() -> None:
    resources = merged_template("prod")["Resources"]
    for alarm, metric in (("LambdaErrorsAlarm", "Errors"), ("LambdaThrottlesAlarm", "Throttles")):
        queries = resources[alarm]["Properties"]["Metrics"]
        functions = {query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
                     for query in queries if "MetricStat" in query}
        assert functions == {"APIHandler", "TurnWorker"}
        assert {query["MetricStat"]["Metric"]["MetricName"] for query in queries if "MetricStat" in query} == {metric}


def test_what_lambdas_runtime_provides_leaves_the_package_and_everything_else_stays_as_it_was(
        tmp_path: Path) -> None:
    zip_path = tmp_path / "deployment.zip"
    files = {"botocore/client.py": b"x = 1\n", "botocore-1.44.8.dist-info/METADATA": b"Name: botocore\n",
             "urllib3/__init__.py": b"y = 2\n", "app.py": b"z = 3\n", "chalicelib/bootstrap.sh": b"#!/bin/sh\n"}
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name.endswith(".sh") else 0o644) << 16
            archive.writestr(info, data)

    assert drop_runtime_provided(zip_path) == ["botocore"]

    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == ["app.py", "chalicelib/bootstrap.sh", "urllib3/__init__.py"]
        assert archive.read("urllib3/__init__.py") == b"y = 2\n"
        assert archive.getinfo("chalicelib/bootstrap.sh").external_attr >> 16 == 0o755
    assert drop_runtime_provided(zip_path) == []  # nothing left to drop: the zip is not rewritten


def test_numpys_own_tests_and_test_data_leave_the_package_and_what_numpy_testing_imports_stays(tmp_path: Path) -> None:
    zip_path = tmp_path / "deployment.zip"
    names = ["numpy/__init__.py", "numpy/_core/tests/test_umath.py", "numpy/lib/tests/data/x.npy",
             "numpy/_core/tests/__init__.py", "numpy/_core/tests/_natype.py",  # numpy.testing imports it
             "numpy/testing/__init__.py", "chalicelib/tests/keep.py"]
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name in names:
            archive.writestr(name, b"")

    assert drop_test_suites(zip_path) == 2

    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == ["chalicelib/tests/keep.py", "numpy/__init__.py",
                                              "numpy/_core/tests/__init__.py", "numpy/_core/tests/_natype.py",
                                              "numpy/testing/__init__.py"]


def test_the_modules_a_cold_start_loads_are_found_by_importing_the_package_and_none_when_it_cannot(
        tmp_path: Path) -> None:
    tree = tmp_path / "task"
    (tree / "vendored").mkdir(parents=True)
    (tree / "vendored" / "__init__.py").write_text("")
    (tree / "vendored" / "later.py").write_text("")  # vendored, but no cold start imports it
    (tree / "app.py").write_text("import vendored\n")

    assert cold_start_sources(tree) == {"app.py", "vendored/__init__.py"}

    (tree / "app.py").write_text("raise ImportError('wheels for another platform')\n")
    assert cold_start_sources(tree) == set()  # then only our own modules are compiled
