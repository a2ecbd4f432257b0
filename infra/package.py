"""Package Ruche for AWS: `chalice package` with infra/ merged in (tables, queues, KMS, batch responses),
what Lambda's runtime provides taken out of the zip, and our modules' bytecode added to it.

    python -m infra.package --stage prod dist/

Writes dist/sam.json and dist/deployment.zip. Then, for example:
    aws cloudformation package --template-file dist/sam.json --s3-bucket BUCKET \
        --output-template-file dist/packaged.yaml
    aws cloudformation deploy --template-file dist/packaged.yaml --stack-name ruche-prod --capabilities CAPABILITY_IAM
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import py_compile
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

INFRA = Path(__file__).resolve().parent
ROOT = INFRA.parent
OWN_CODE = ("app.py", "chalicelib")  # what add_bytecode compiles: our modules, not the vendored ones
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})  # in every Lambda Python runtime
TEST_SUITES_OF = ("numpy/",)  # vendored packages whose own tests are shipped in their wheels
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the package: tracebacks name these paths


def merged_template(stage: str) -> dict[str, Any]:
    """infra/template.yaml with infra/lambda.yaml over it, the Stage parameter defaulting to `stage`."""
    base, problems = decode_str((INFRA / "template.yaml").read_text())
    overrides, more = decode_str((INFRA / "lambda.yaml").read_text())
    if problems or more:
        raise ValueError(f"infra templates do not parse: {problems or more}")
    merged = _deep_merge(json.loads(json.dumps(base)), json.loads(json.dumps(overrides)))
    merged["Parameters"]["Stage"]["Default"] = stage
    merged.pop("AWSTemplateFormatVersion", None)
    return merged


def _deep_merge(target: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value
    return target


def package(stage: str, out_dir: Path, project_dir: Path = ROOT) -> Path:
    """Run `chalice package` with the merged infra template; returns the path of sam.json."""
    with tempfile.TemporaryDirectory() as scratch:
        merge = Path(scratch) / "merge.json"
        merge.write_text(json.dumps(merged_template(stage)))
        env = {**os.environ, "RUCHE_TURN_QUEUE_NAME": f"ruche-{stage}-turns.fifo"}
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        chalice = Path(sys.executable).with_name("chalice")
        subprocess.run(  # noqa: S603 - our own tool with arguments we build
            [str(chalice), "--project-dir", str(project_dir), "package", "--stage", stage,
             "--merge-template", str(merge), str(out_dir)],
            check=True, env=env,
        )
    finish_package(out_dir / "deployment.zip")
    return out_dir / "sam.json"


def finish_package(zip_path: Path) -> None:
    """What `chalice package` leaves to do: drop what Lambda's runtime provides and vendored test
    suites, add the bytecode a cold start needs."""
    drop_runtime_provided(zip_path)
    drop_test_suites(zip_path)
    add_bytecode(zip_path)


def drop_runtime_provided(zip_path: Path) -> list[str]:
    """Remove the packages Lambda's Python runtime already has; returns the top-level names removed.

    chalice vendors every dependency of the requirements: the X-Ray SDK (Powertools' tracer) asks
    for botocore, which the runtime ships with boto3, and which is most of a package's size.
    urllib3 stays: ours (2.x, providers/transport.py) must win over the runtime's.
    """
    removed = _drop(zip_path, lambda name: _top_level(name) in RUNTIME_PROVIDED)
    return sorted({_top_level(name) for name in removed})


def drop_test_suites(zip_path: Path) -> int:
    """Remove the test suites vendored packages ship (numpy's `test_*.py` files and test data under
    `*/tests/`, a few MB that no request runs); returns how many files. The other modules of a tests
    folder stay: `numpy.testing` imports one (`numpy/_core/tests/_natype.py`)."""
    return len(_drop(zip_path, _is_test_suite))


def _is_test_suite(name: str) -> bool:
    if not name.startswith(TEST_SUITES_OF) or "/tests/" not in name:
        return False
    file_name = name.rsplit("/", 1)[-1]
    return file_name.startswith("test_") or not file_name.endswith(".py")


def _drop(zip_path: Path, unwanted: Callable[[str], bool]) -> list[str]:
    """Rewrite the zip without the entries `unwanted` names, each kept one as it was (permissions,
    compression); returns the names removed. An untouched zip is not rewritten."""
    with zipfile.ZipFile(zip_path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    removed = [info.filename for info, _ in entries if unwanted(info.filename)]
    if removed:
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for info, data in entries:
                if not unwanted(info.filename):
                    archive.writestr(info, data)
    return removed


def _top_level(name: str) -> str:
    """The distribution a zip entry belongs to: `botocore/x.py` and `botocore-1.2.dist-info/...` -> botocore."""
    first = name.split("/", 1)[0]
    return first.split("-", 1)[0].lower() if first.endswith((".dist-info", ".egg-info")) else first


def add_bytecode(zip_path: Path, roots: tuple[str, ...] = OWN_CODE) -> int:
    """Add compiled bytecode to the package: every module of ours (`roots`) and every vendored one
    that `import app` loads; returns how many.

    Lambda's package directory is read-only, so Python cannot cache what it compiles there: without
    .pyc files every cold start compiles every source file it imports (~100 of ours, ~200 of
    pydantic, Powertools and the like). Only what a cold start loads is compiled of the vendored
    packages: all of them would not fit the package budget. Unchecked-hash .pyc files are used as
    they are, without comparing them to the source's timestamp, which a zip does not keep
    faithfully. The Lambda runtime is the Python that packaged (chalice picks it), so they match.
    """
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tree)
            sources = [name for name in archive.namelist() if name.endswith(".py")]
        wanted = {name for name in sources if name in roots or name.startswith(tuple(f"{r}/" for r in roots))}
        wanted |= cold_start_sources(tree) & set(sources)
        for name in sorted(wanted):
            py_compile.compile(str(tree / name), cfile=importlib.util.cache_from_source(str(tree / name)),
                               dfile=f"{LAMBDA_TASK_ROOT}/{name}", doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(wanted):
                pyc = Path(importlib.util.cache_from_source(name))
                archive.write(tree / pyc, pyc.as_posix())
    return len(wanted)


def cold_start_sources(tree: Path) -> set[str]:
    """The package's source files (relative paths) that `import app` loads, found by importing it
    from `tree` in a fresh interpreter; empty (our modules are still compiled) when that fails,
    e.g. packaging on a machine whose platform the vendored wheels are not for."""
    probe = ("import json, sys; import app; "
             "print(json.dumps([getattr(module, '__file__', None) for module in list(sys.modules.values())]))")
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tree, env=env, capture_output=True,  # noqa: S603
                          text=True, check=False)
    if done.returncode != 0:
        print(f"warning: `import app` failed in the package; only our modules are compiled\n{done.stderr[-500:]}",
              file=sys.stderr)
        return set()
    root = str(tree.resolve()) + os.sep
    files = [str(Path(name).resolve()) for name in json.loads(done.stdout.strip().splitlines()[-1]) if name]
    return {name.removeprefix(root).replace(os.sep, "/") for name in files if name.startswith(root)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args(argv)
    print(package(args.stage, args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
