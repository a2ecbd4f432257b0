"""The error envelope: every RucheError becomes `{"error": {"code", "message", "details"}}` with its status.

HTTP_STATUS must name every RucheError subclass (a test walks the tree and fails on one without a
status), so a new error is a deliberate API decision, never an accidental 500.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec

from aws_lambda_powertools import Logger
from chalice.app import Response
from pydantic import BaseModel

from chalicelib.domain import errors
from chalicelib.providers.llm import ProviderError
from chalicelib.providers.network import BlockedDestination

logger = Logger(child=True)
P = ParamSpec("P")

HTTP_STATUS: dict[type[errors.RucheError], int] = {
    errors.RucheError: 500,
    errors.InvalidJson: 400,
    errors.InvalidInput: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.BadSignature: 403,
    errors.NotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.Conflict: 409,
    errors.StaleSession: 409,
    errors.PayloadTooLarge: 413,
    errors.RateLimited: 429,
    errors.QuotaExceeded: 429,
    errors.Unavailable: 503,
    ProviderError: 502,  # the LLM provider failed after its retries
    BlockedDestination: 502,  # a call-time refusal of a private address (publish time is a 422)
}


def status_for(error: errors.RucheError) -> int:
    """The status of the most specific class of `error` that HTTP_STATUS names."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_response(error: errors.RucheError) -> Response:
    """The envelope for one error. 429 carries Retry-After; 5xx never carry internal details."""
    status = status_for(error)
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    details = dict(error.details)
    if isinstance(error, errors.RateLimited):
        headers["Retry-After"] = str(max(1, int(float(details.get("retry_after_s", 1)) + 0.999)))
    message = error.message
    if status >= 500 and type(error) is errors.RucheError:
        message, details = "an internal error occurred", {}
    body = {"error": {"code": error.code, "message": message, "details": _jsonable(details)}}
    return Response(body=json.dumps(body), status_code=status, headers=headers)


def api_call(view: Callable[P, Response]) -> Callable[P, Response]:
    """Run a route handler; map RucheError to the envelope and anything else to a logged 500.

    Chalice would turn an unexpected exception into its own `{"Code", "Message"}` body; this keeps
    the envelope on every path. The log records the exception type and traceback, never the body.
    """

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return view(*args, **kwargs)
        except errors.RucheError as error:
            if status_for(error) >= 500:
                logger.exception("request failed", extra={"code": error.code})
            return error_response(error)
        except Exception:
            logger.exception("unexpected error")
            return error_response(errors.RucheError("an internal error occurred"))

    return wrapper


# Chalice's own error bodies ({"Code", "Message"}: wrong method, unsupported media type, ...) -> our codes.
_CHALICE_CODES = {
    "MethodNotAllowedError": "method_not_allowed",
    "UnsupportedMediaType": "unsupported_media_type",
    "BadRequest": "bad_request",
    "BadRequestError": "bad_request",
    "NotFoundError": "not_found",
}


def envelope_chalice_errors(request: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: re-shape the errors Chalice answers itself (405, 415, ...) into the envelope.

    An unknown path never reaches the function (API Gateway answers it), so it cannot be re-shaped here.
    """
    response = get_response(request)
    body = response.body
    if response.status_code < 400 or not isinstance(body, dict) or set(body) != {"Code", "Message"}:
        return response
    code = _CHALICE_CODES.get(str(body["Code"]), "internal_error")
    message = str(body["Message"]) if code != "internal_error" else "an internal error occurred"
    envelope = {"error": {"code": code, "message": message, "details": {}}}
    headers = {**response.headers, "Content-Type": "application/json"}
    return Response(body=json.dumps(envelope), status_code=response.status_code, headers=headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; status 204 sends no body. A view (a pydantic model) is sent as its JSON
    dump, its fields in declaration order."""
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    all_headers: dict[str, str | list[str]] = {"Content-Type": "application/json", **(headers or {})}
    if status == 204:
        return Response(body="", status_code=204, headers={**(headers or {})})
    return Response(body=json.dumps(body, separators=(",", ":")), status_code=status, headers=all_headers)


def _jsonable(value: Any) -> Any:
    """Details come from our own code, but make sure a stray object never breaks the envelope."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))
    return value
