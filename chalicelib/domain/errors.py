"""Errors a caller can act on. Each code is part of the API contract (API.md).

RucheError            internal_error        500
├── InvalidJson       invalid_json          400  (malformed JSON or YAML)
├── InvalidInput      invalid_input         422  details.errors = [{"path", "message"}]
├── Unauthorized      unauthorized          401
├── Forbidden         forbidden             403
├── BadSignature      invalid_signature     403  (a webhook whose signature does not verify)
├── NotFound          not_found             404  (also: another tenant's object)
├── MethodNotAllowed  method_not_allowed    405
├── Conflict          conflict              409  (a stale If-Match, an id already taken)
│   └── StaleSession  stale_session         409  (a turn committed on top of a newer one)
├── PayloadTooLarge   payload_too_large     413
├── RateLimited       rate_limited          429  details.retry_after_s
│   └── QuotaExceeded quota_exceeded        429  details.limit, quota, reset_at, retry_after_s
└── Unavailable       unavailable           503  (a dependency is down and nothing was written)

Defined in the domain so that every layer can raise them; chalicelib/api maps them to HTTP.
"""

from __future__ import annotations

from typing import Any


class RucheError(Exception):
    code = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidJson(RucheError):
    code = "invalid_json"


class InvalidInput(RucheError):
    code = "invalid_input"

    @classmethod
    def at(cls, path: str, message: str) -> InvalidInput:
        """One problem at one place: the most common case."""
        return cls(f"{path}: {message}" if path else message, errors=[{"path": path, "message": message}])

    @classmethod
    def many(cls, problems: list[tuple[str, str]], summary: str = "") -> InvalidInput:
        """Several problems reported at once, as API.md asks (details.errors)."""
        errors = [{"path": path, "message": message} for path, message in problems]
        first = f"{problems[0][0]}: {problems[0][1]}" if problems else "invalid input"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return cls(summary or first + more, errors=errors)


class Unauthorized(RucheError):
    code = "unauthorized"


class Forbidden(RucheError):
    code = "forbidden"


class BadSignature(RucheError):
    code = "invalid_signature"


class NotFound(RucheError):
    code = "not_found"


class MethodNotAllowed(RucheError):
    code = "method_not_allowed"


class Conflict(RucheError):
    code = "conflict"


class StaleSession(Conflict):
    code = "stale_session"


class PayloadTooLarge(RucheError):
    code = "payload_too_large"


class RateLimited(RucheError):
    code = "rate_limited"


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"


class Unavailable(RucheError):
    code = "unavailable"
