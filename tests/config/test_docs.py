"""docs/CONFIG.md lists every config key."""

from __future__ import annotations

from pathlib import Path

from chalicelib.config.resolver import resolve

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONFIG.md"


def test_every_config_key_is_documented() -> None:
    text = DOC.read_text()
    missing = [key for key in resolve([]).provenance if f"| `{key}` |" not in text]
    assert missing == []
