"""Powertools Tracer (X-Ray) around the calls that leave the container: LLM, tools, channels.

Off by default locally: Powertools disables the tracer outside Lambda (no LAMBDA_TASK_ROOT) and
under `chalice local`, and POWERTOOLS_TRACE_DISABLED=true turns it off anywhere. In Lambda the
functions run with X-Ray active (`xray` in .chalice/config.json); botocore is patched, so each
DynamoDB, SQS and Bedrock call is a subsegment too. Annotations hold ids and names, never text.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer


@functools.cache
def tracer() -> Tracer:
    """The container's tracer, built on first use (the X-Ray SDK loads only when tracing is on)."""
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - not at cold start (import budget)

    return Tracer(service="ruche", patch_modules=["botocore"])


@contextmanager
def traced(name: str, **annotations: str) -> Iterator[None]:
    """A subsegment `## <name>` around the block, annotated; nothing at all when tracing is off."""
    active = tracer()
    if active.disabled:
        yield
        return
    with active.provider.in_subsegment(f"## {name}") as subsegment:
        for key, value in annotations.items():
            subsegment.put_annotation(key, value)
        yield
