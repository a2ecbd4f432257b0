"""What `import app` leaves for later (DESIGN.md §7's import budget; bench/import_time.py has the figures).

Every Lambda container pays its cold `import app`; each module below is loaded on first use by the
request that needs it. The test fails when one creeps back into cold start, whatever the timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT

DEFERRED = {
    "regex": "domain/patterns.py compiles a tenant's first pattern with it",
    "chalicelib.focal": "the turn pipeline, on the first turn (runtime/turns.py)",
    "aws_lambda_powertools.utilities.idempotency": "runtime/idempotency.py, on the first POST with an Idempotency-Key",
}


def after_import_app(expression: str) -> Any:
    """`expression` (JSON-able) evaluated in a fresh interpreter right after `import app`."""
    probe = f"import json, sys; import app; print(json.dumps({expression}))"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_app_leaves_the_deferred_modules_unloaded() -> None:
    loaded = after_import_app(f"[m for m in {sorted(DEFERRED)!r} if m in sys.modules]")
    assert loaded == [], {name: DEFERRED[name] for name in loaded}


def test_import_app_leaves_the_answer_models_unbuilt() -> None:
    # Each route serialises one or two answers: their validators are built on first use.
    built = after_import_app("[m.__name__ for m in (sys.modules['chalicelib.api.views'].TenantCreated, "
                             "sys.modules['chalicelib.api.views'].SessionPage, "
                             "sys.modules['chalicelib.api.usage'].InsightsAnswer) if m.__pydantic_complete__]")
    assert built == []
