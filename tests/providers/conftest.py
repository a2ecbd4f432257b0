"""Fixtures for provider tests: a real, scriptable OpenAI-compatible HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.chat_server import ChatServer


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    """A ChatServer on 127.0.0.1 and a free port, stopped after the test."""
    with ChatServer() as server:
        yield server
