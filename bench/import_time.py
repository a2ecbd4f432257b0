"""Cold `import app` time of Ruche against a bare Chalice + boto3 + pydantic app, in the same run.

    .venv/bin/python bench/import_time.py [--runs 15]
    .venv/bin/python bench/import_time.py --package [--runs 9]   # from the Lambda package, read-only

Each measurement is a fresh interpreter that times only its `import app` (interpreter start-up is
the same for both and left out). The two apps alternate so machine load hits both alike; one
warm-up run each is not counted (it writes the .pyc files a deployed package would have).
Budget (DESIGN.md §7): Ruche ≤ 1.3× the bare app.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_RATIO = 1.3

BARE_APP = '''\
import boto3
import pydantic
from chalice import Chalice

app = Chalice(app_name="bare")


class Item(pydantic.BaseModel):
    name: str


@app.route("/")
def index() -> dict[str, str]:
    return {"name": Item(name="ok").name}
'''

TIMER = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"


def time_import(project: Path, *, write_bytecode: bool = True) -> float:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(project)}
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("AWS_ENDPOINT_URL", None)
    done = subprocess.run([sys.executable, "-c", TIMER], cwd=project, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"`import app` failed in {project}:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def packaged(runs: int) -> None:
    """`import app` from the Lambda package as `make package` builds it (bench/package_size.py: the
    runtime dependencies downloaded for Lambda), with bytecode writes off as on Lambda's read-only
    disk: with the .pyc files the package ships, and with them removed."""
    sys.path.insert(0, str(ROOT / "bench"))
    from package_size import build  # only this mode packages (PyPI must be reachable)

    with tempfile.TemporaryDirectory(prefix="ruche-package-") as tmp:
        scratch = Path(tmp)
        zip_path, _ = build(scratch)
        compiled, source = scratch / "compiled", scratch / "source"
        for task in (compiled, source):
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(task)
        for cache in list(source.rglob("__pycache__")):
            shutil.rmtree(cache)
        times: dict[Path, list[float]] = {compiled: [], source: []}
        for _ in range(runs):
            for task, taken in times.items():
                taken.append(time_import(task, write_bytecode=False))
    print(f"import app from the package, read-only (median of {runs}): "
          f"{statistics.median(times[compiled]) * 1000:.0f} ms with its .pyc files, "
          f"{statistics.median(times[source]) * 1000:.0f} ms compiling at start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--package", action="store_true", help="time `import app` from the Lambda package")
    args = parser.parse_args()
    if args.package:
        packaged(args.runs)
        return 0
    with tempfile.TemporaryDirectory(prefix="bare-chalice-") as tmp:
        bare = Path(tmp)
        (bare / "app.py").write_text(BARE_APP)
        time_import(ROOT), time_import(bare)  # warm-up: .pyc files and the page cache
        ruche_s: list[float] = []
        bare_s: list[float] = []
        for _ in range(args.runs):
            ruche_s.append(time_import(ROOT))
            bare_s.append(time_import(bare))
    ruche_ms, bare_ms = statistics.median(ruche_s) * 1000, statistics.median(bare_s) * 1000
    ratio = ruche_ms / bare_ms
    print(f"import app, ruche (median of {args.runs}): {ruche_ms:.0f} ms")
    print(f"import app, bare chalice + boto3 + pydantic (median of {args.runs}): {bare_ms:.0f} ms")
    verdict = "within" if ratio <= BUDGET_RATIO else "OVER"
    print(f"import app ratio: {ratio:.2f}x (budget: <= {BUDGET_RATIO}x) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
