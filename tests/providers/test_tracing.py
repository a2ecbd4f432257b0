"""The tracer stays off outside Lambda, and a traced block runs exactly as it would untraced."""

from __future__ import annotations

import pytest

from chalicelib.providers.tracing import traced, tracer


def test_tracing_is_off_locally_and_a_traced_block_still_runs_and_raises() -> None:
    assert tracer().disabled
    ran = []
    with traced("llm", provider="offline"):
        ran.append(1)
    with pytest.raises(ValueError, match="boom"), traced("tool"):
        raise ValueError("boom")
    assert ran == [1]
