"""A small HTTP client for the Ruche API (urllib, stdlib): JSON in and out, errors as one clear line.

Connection problems and refusals (401, 403) are usage errors (exit 2); other API errors keep the
envelope's code, message and details (ApiError) so a command can say more, e.g. map a 422's item
paths to file lines.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from chalicelib.cli.common import USAGE_ERROR, CliFailure, Server

TIMEOUT_S = 60.0  # a synchronous turn may regenerate a few times against a real model


class ApiError(CliFailure):
    """The API answered with an error envelope."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})", USAGE_ERROR)
        self.status, self.code, self.api_message, self.details = status, code, message, details


@dataclass(frozen=True, slots=True)
class YamlText:
    """A request body sent as it is written (application/yaml): the server keeps its comments."""

    text: str


class ApiClient:
    """Calls one Ruche server with one tenant key."""

    def __init__(self, server: Server, *, timeout_s: float = TIMEOUT_S) -> None:
        self._server = server
        self._timeout_s = timeout_s

    @property
    def url(self) -> str:
        return self._server.url

    def get(self, path: str, **query: str | None) -> Any:
        return self.request("GET", path, query=query)

    def put(self, path: str, body: object, headers: dict[str, str] | None = None) -> Any:
        """PUT `body` as JSON, or as it is written when it is YamlText."""
        return self.request("PUT", path, body=body, headers=headers)

    def post(self, path: str, body: object) -> Any:
        return self.request("POST", path, body=body)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        query: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty body). Raises ApiError for an error envelope,
        CliFailure (exit 2) when the server cannot be reached or answers something that is not JSON."""
        params = {name: value for name, value in (query or {}).items() if value is not None}
        url = f"{self._server.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        all_headers = {"Accept": "application/json", **(headers or {})}
        data: bytes | None = None
        if isinstance(body, YamlText):
            data = body.text.encode("utf-8")
            all_headers["Content-Type"] = "application/yaml"
        elif body is not None:
            data = json.dumps(body, default=str).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        if self._server.api_key:
            all_headers["Authorization"] = f"Bearer {self._server.api_key}"
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise _api_error(exc.code, exc.read(), self._server) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliFailure(f"cannot reach the server at {self._server.url}: {reason}") from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CliFailure(
                f"{self._server.url} answered {method} {path} with something that is not JSON: is it a Ruche server?"
            ) from None


def _api_error(status: int, raw: bytes, server: Server) -> CliFailure:
    try:
        envelope = json.loads(raw).get("error") or {}
    except (ValueError, AttributeError):
        envelope = {}
    code = str(envelope.get("code") or f"http_{status}")
    message = str(envelope.get("message") or "the server refused the request")
    raw_details = envelope.get("details")
    details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    if status == 401:
        hint = (
            "no API key given (--key, RUCHE_API_KEY or the config file)"
            if not server.api_key
            else "the API key was refused"
        )
        return CliFailure(f"{server.url}: {hint} ({code})")
    return ApiError(status, code, message, details)
