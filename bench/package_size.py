"""The zipped size of the Lambda deployment package that `make package` builds.

    .venv/bin/python bench/package_size.py

Does what `make package` does, in a temporary copy of the project so the work tree is untouched:
`uv export` of the lock (runtime dependencies only: no dev group, so no chalice, boto3 or test
tools) into requirements.txt, then `chalice package`, which downloads Linux wheels for them (PyPI
must be reachable). Budget (DESIGN.md §7): ≤ 15 MB zipped, ≤ 25 MB when numpy is in the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.package import finish_package  # noqa: E402

BIN = Path(sys.executable).parent
MB = 1024 * 1024
BUDGET_MB, BUDGET_WITH_NUMPY_MB = 15, 25


def uv_binary() -> str:
    pinned = ROOT / ".tools" / "bin" / "uv"  # what `make setup` installs
    found = str(pinned) if pinned.exists() else shutil.which("uv")
    if not found:
        raise SystemExit("uv is not installed: run `make setup` (it installs uv into .tools/)")
    return found


def run(argv: list[str], cwd: Path) -> str:
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def not_vendored(chalice_output: str) -> list[str]:
    """The requirements chalice could not find a Lambda-compatible wheel for (it packages without them)."""
    if "Could not install dependencies:" not in chalice_output:
        return []
    listed = chalice_output.split("Could not install dependencies:", 1)[1].split("You will have to", 1)[0]
    return [line.strip() for line in listed.splitlines() if line.strip()]


def build(project: Path) -> tuple[Path, list[str]]:
    """Copy what chalice packages (app.py, chalicelib/, .chalice/config.json), then package it."""
    shutil.copy2(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".chalice").mkdir()
    shutil.copy2(ROOT / ".chalice" / "config.json", project / ".chalice" / "config.json")
    run([uv_binary(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--no-header",
         "--quiet", "--project", str(ROOT), "-o", str(project / "requirements.txt")], cwd=ROOT)
    output = run([str(BIN / "chalice"), "package", "--stage", "prod", str(project / "dist")], cwd=project)
    zip_path = project / "dist" / "deployment.zip"
    finish_package(zip_path)  # as `make package` (infra/package.py) does
    return zip_path, not_vendored(output)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ruche-package-") as tmp:
        package, missing = build(Path(tmp))
        size_mb = package.stat().st_size / MB
        with zipfile.ZipFile(package) as archive:
            names = archive.namelist()
            unzipped_mb = sum(info.file_size for info in archive.infolist()) / MB
        requirements = (Path(tmp) / "requirements.txt").read_text().split()
    has_numpy = any(name.startswith("numpy/") for name in names)
    top_level = {name.split("/", 1)[0] for name in names}
    leaked = sorted(top_level & {"boto3", "botocore"})
    has_numpy = has_numpy or any(item.startswith("numpy==") for item in missing)
    budget = BUDGET_WITH_NUMPY_MB if has_numpy else BUDGET_MB
    verdict = "within" if size_mb <= budget else "OVER"
    if missing:
        # chalice packages without them; the figure is then a lower bound and the package would not run.
        verdict = f"INCOMPLETE: no Lambda-compatible wheel for {', '.join(missing)}"
    print(f"requirements.txt lines: {len([line for line in requirements if '==' in line])}")
    print(f"deployment package zipped: {size_mb:.1f} MB (budget: <= {budget} MB"
          f"{' with numpy' if has_numpy else ''}) {verdict}")
    print(f"deployment package unzipped: {unzipped_mb:.1f} MB (Lambda limit: <= 250 MB)")
    print(f"boto3/botocore in the package: {', '.join(leaked) or 'none'} (budget: none)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
