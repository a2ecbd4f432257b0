"""The service's parent Powertools logger; every module's `Logger(child=True)` logs through it.

Structured JSON with the turn's ids as keys. Never a message, a reply, a field value or a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger

logger = Logger()

_TURN_KEYS = ("tenant_id", "agent_id", "session_id", "turn_id")


@contextmanager
def turn_keys(**ids: str) -> Iterator[None]:
    """Tag every log line inside the block with the turn's ids; a warm container forgets them after."""
    logger.append_keys(**ids)
    try:
        yield
    finally:
        logger.remove_keys([key for key in ids if key in _TURN_KEYS] or list(ids))
