"""Small factories for provider tests."""

from __future__ import annotations

from typing import Any

from chalicelib.providers.llm import LlmMessage, LlmRequest, Task


def a_request(text: str = "What are your opening hours?", *, task: Task = "generation",
              system: str = "You are a helpful shop assistant.", **overrides: Any) -> LlmRequest:
    """A small LLM request; keyword overrides set any other LlmRequest field."""
    messages = (LlmMessage("system", system), LlmMessage("user", text))
    return LlmRequest(task=task, messages=messages, **overrides)
