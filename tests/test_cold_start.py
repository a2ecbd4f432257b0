"""What `import app` leaves for later (DESIGN.md §7's import budget; bench/import_time.py has the figures).

Every Lambda container pays its cold `import app`; each module below is loaded on first use by the
request that needs it. The test fails when one creeps back into cold start, whatever the timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

DEFERRED = {
    "regex": "domain/patterns.py compiles a tenant's first pattern with it",
    "chalicelib.focal": "the turn pipeline, on the first turn (runtime/turns.py)",
    "aws_lambda_powertools.utilities.idempotency": "runtime/idempotency.py, on the first POST with an Idempotency-Key",
}


def test_import_app_leaves_the_deferred_modules_unloaded() -> None:
    probe = f"import json, sys; import app; print(json.dumps([m for m in {sorted(DEFERRED)!r} if m in sys.modules]))"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], {name: DEFERRED[name] for name in loaded}
