"""The error envelope and the exhaustive error-to-status map."""

from __future__ import annotations

import importlib
import json
import pkgutil

import chalicelib
from chalicelib.api.errors import HTTP_STATUS, api_call, error_response, json_response, status_for
from chalicelib.domain import errors
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RateLimited, RucheError, StaleSession
from tests.api.harness import Api, error_of


def _all_subclasses(cls: type[RucheError]) -> set[type[RucheError]]:
    found: set[type[RucheError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_ruche_error_subclass_in_chalicelib_has_an_http_status() -> None:
    for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        importlib.import_module(module.name)  # an error class only exists once its module is imported
    missing = sorted(
        cls.__qualname__
        for cls in _all_subclasses(RucheError)
        if cls not in HTTP_STATUS and cls.__module__.startswith("chalicelib.")
    )
    assert missing == []


def test_the_most_specific_status_wins() -> None:
    assert status_for(StaleSession("moved on")) == 409
    assert status_for(NotFound("x")) == 404
    assert status_for(errors.InvalidJson("x")) == 400


def test_the_envelope_carries_code_message_and_details() -> None:
    response = error_response(InvalidInput.at("rules[0].templates[0]", "unknown template 'x'"))
    body = json.loads(response.body)
    assert response.status_code == 422
    assert body["error"]["code"] == "invalid_input"
    assert body["error"]["details"]["errors"] == [
        {"path": "rules[0].templates[0]", "message": "unknown template 'x'"}
    ]


def test_rate_limited_answers_429_with_retry_after_in_whole_seconds() -> None:
    response = error_response(RateLimited("slow down", retry_after_s=2.2))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


def test_an_unexpected_exception_is_a_500_envelope_that_reveals_nothing() -> None:
    @api_call
    def broken() -> object:
        raise KeyError("secret-internal-detail")

    response = broken()
    body = json.loads(response.body)
    assert response.status_code == 500
    assert body["error"]["code"] == "internal_error"
    assert "secret-internal-detail" not in response.body


def test_a_ruche_error_raised_in_a_handler_becomes_its_envelope() -> None:
    @api_call
    def stale() -> object:
        raise Conflict("the agent changed", latest_version=3)

    response = stale()
    assert response.status_code == 409
    assert json.loads(response.body)["error"]["details"] == {"latest_version": 3}


def test_details_that_are_not_json_are_rendered_as_text() -> None:
    body = json.loads(error_response(NotFound("gone", when=object)).body)
    assert isinstance(body["error"]["details"]["when"], str)


def test_204_sends_no_body() -> None:
    response = json_response({"ignored": True}, 204)
    assert (response.status_code, response.body) == (204, "")


def test_chalices_own_errors_are_reshaped_into_the_envelope(api: Api) -> None:
    wrong_method = api.call("PATCH", "/v1/config")
    assert (wrong_method.status_code, error_of(wrong_method)["code"]) == (405, "method_not_allowed")
    assert wrong_method.headers["Allow"]
    media = api.call("PUT", "/v1/config", raw="a=b", content_type="text/plain")
    assert (media.status_code, error_of(media)["code"]) == (415, "unsupported_media_type")
