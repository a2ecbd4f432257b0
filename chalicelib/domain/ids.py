"""Identifiers and clocks, kept here so tests can read them and nothing else invents its own."""

from __future__ import annotations

import re
import secrets
import time

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)


def new_id(prefix: str) -> str:
    """An unguessable id such as `ses_3f9c...` (16 random bytes)."""
    return f"{prefix}_{secrets.token_hex(16)}"


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def now_s() -> float:
    return time.time()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
