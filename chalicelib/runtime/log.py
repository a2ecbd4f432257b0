"""The service's parent Powertools logger; every module's `Logger(child=True)` logs through it.

Structured JSON with the turn's ids as keys. Never a message, a reply, a field value or a secret.
Keys are appended per thread (Powertools' thread-safe keys): the worker runs a batch's message
groups side by side (runtime/batches.py), and each line must carry its own turn's ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger

logger = Logger()


@contextmanager
def turn_keys(**ids: str) -> Iterator[None]:
    """Tag every log line inside the block with the turn's ids; a warm container forgets them after."""
    with _thread_keys(**ids):
        yield


@contextmanager
def record_keys(**ids: str | int) -> Iterator[None]:
    """Tag every log line inside the block with a queue record's id and receive count."""
    with _thread_keys(**ids):
        yield


@contextmanager
def _thread_keys(**ids: object) -> Iterator[None]:
    before = logger.thread_safe_get_current_keys()
    logger.thread_safe_append_keys(**ids)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(list(ids))
        restored = {key: value for key, value in before.items() if key in ids}
        if restored:  # an outer block's ids of the same name come back
            logger.thread_safe_append_keys(**restored)
