"""Named fault points for the fault-injection suite (tests/faults/): inert unless RUCHE_FAULT_POINTS is set.

    RUCHE_FAULT_POINTS="after_inbox_read:0.05,after_commit:0.05,before_delete:0.05,commit_error:0.05"

A kill point makes the process SIGKILL itself there with that probability, as a crash or a Lambda
timeout would, so a test can stop a worker *between* two named steps (which a kill from outside
only hits by luck). `commit_error` makes that share of turn commits fail as a DynamoDB 500 does
(a botocore hook on the worker's DynamoDB client). Production never sets the variable: a fault
point then costs one dict lookup.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.runtime.log import logger

KILL_POINTS = ("after_inbox_read", "after_commit", "before_delete")
COMMIT_ERROR = "commit_error"


def parse_points(spec: str) -> dict[str, float]:
    """`name:probability,...` → {name: probability}; a name without one fires every time."""
    points: dict[str, float] = {}
    for part in filter(None, (chunk.strip() for chunk in spec.split(","))):
        name, _, chance = part.partition(":")
        points[name.strip()] = float(chance) if chance else 1.0
    return points


_POINTS: Mapping[str, float] = parse_points(os.environ.get("RUCHE_FAULT_POINTS", ""))


def fault_point(name: str) -> None:
    """SIGKILL this process at `name` when the fault suite asked for it; nothing otherwise."""
    chance = _POINTS.get(name)
    if chance is not None and random.random() < chance:  # noqa: S311 - fault injection, not security
        logger.warning("fault point: killing the process", extra={"fault_point": name})
        os.kill(os.getpid(), signal.SIGKILL)


def install_commit_errors(dynamodb: Any) -> None:
    """Make a share of TransactWriteItems calls fail with InternalServerError (when asked for)."""
    chance = _POINTS.get(COMMIT_ERROR)
    if chance is None:
        return

    def fail_sometimes(**_: object) -> None:
        if random.random() < chance:  # noqa: S311 - fault injection, not security
            logger.warning("fault point: injected DynamoDB error", extra={"fault_point": COMMIT_ERROR})
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}},
                              "TransactWriteItems")

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", fail_sometimes)
