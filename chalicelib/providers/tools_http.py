"""The HTTP tool client: POST a tool's arguments as JSON, get one JSON object back.

One attempt per call: the FOCAL tools phase owns retries, because only it knows the tool's
side-effect class. The Idempotency-Key header lets the tool's server drop a repeated call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.providers.llm import ProviderError
from chalicelib.providers.network import check_url
from chalicelib.providers.tracing import traced
from chalicelib.providers.transport import Send, guarded_send, post_json

logger = Logger(child=True)


class ToolCallFailed(Exception):
    """The tool could not be reached, refused the call, or answered something other than a JSON object.

    `status` is the HTTP status when there was one; `reason` is a short machine-readable word.
    """

    def __init__(self, message: str, *, reason: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class HttpToolClient:
    """Calls tools over HTTP through an injectable `send` (tests pass a real server or a function)."""

    def __init__(self, *, allow_private: bool = False, send: Send | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self._allow_private = allow_private
        self._send = send or guarded_send(allow_private)  # judges the peer of every connection
        self._headers = dict(headers or {})

    def call(self, url: str, arguments: Mapping[str, Any], idempotency_key: str,
             timeout_s: float) -> dict[str, Any]:
        """POST `arguments` to `url` once and return the JSON object it answers.

        Raises TimeoutError when no answer comes within timeout_s, ToolCallFailed for a refused
        destination, an unreachable host, a non-2xx status, or an answer that is not a JSON object.
        Never retries, never follows redirects, never logs arguments or results.
        """
        try:
            check_url(url, self._allow_private)
        except ProviderError as exc:
            raise ToolCallFailed(exc.message, reason="blocked_destination") from exc
        headers = {**self._headers, "Idempotency-Key": idempotency_key}
        started = time.perf_counter()
        try:
            with traced("tool"):
                answer = post_json(self._send, url, arguments, timeout_s, headers)
        except ConnectionError as exc:
            raise ToolCallFailed(f"the tool is unreachable: {exc}", reason="unreachable") from exc
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        logger.debug("tool answered", extra={"status": answer.status, "latency_ms": latency_ms})
        if not 200 <= answer.status < 300:
            raise ToolCallFailed(f"the tool answered HTTP {answer.status}", reason="http_status",
                                 status=answer.status)
        try:
            result = answer.json()
        except ValueError as exc:  # UnicodeDecodeError included
            raise ToolCallFailed("the tool's answer is not JSON", reason="not_json",
                                 status=answer.status) from exc
        if not isinstance(result, dict):
            raise ToolCallFailed(f"the tool's answer is a JSON {type(result).__name__}, not an object",
                                 reason="not_an_object", status=answer.status)
        return result
