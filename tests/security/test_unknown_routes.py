"""An unknown route answers the 404 envelope and never echoes a request header.

Chalice's local gateway mimicked API Gateway: 403, and with an Authorization header the body
repeated it ("...Authorization=Bearer <the caller's key>"). Checked on the in-process gateway and on
a real `chalice local` process; the deployed API's Gateway Response is checked in tests/test_package.py.
"""

from __future__ import annotations

import pytest
import requests

from tests.api.harness import Api
from tests.integration.conftest import LocalStack

KEY = "rk_live_SECRET-caller-key-0001"
UNKNOWN = ["/v1/nowhere/at/all", "/v2/agents", "/", "/v1/agents/support/turns/extra/segments"]


@pytest.mark.parametrize("path", UNKNOWN)
def test_an_unknown_route_is_the_404_envelope_in_process(api: Api, path: str) -> None:
    response = api.call("GET", path, headers={"Authorization": f"Bearer {KEY}", "X-Custom": "echo-me"})
    assert response.status_code == 404
    assert response.json_body == {"error": {"code": "not_found", "message": "no such route", "details": {}}}
    assert KEY not in response.body.decode() and "echo-me" not in response.body.decode()


def test_known_routes_still_answer_as_before(api: Api) -> None:
    assert api.call("GET", "/health").status_code == 200
    assert api.call("GET", "/v1/agents", KEY).status_code == 401


@pytest.mark.integration
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_route_under_chalice_local_is_the_404_envelope_without_the_key(
        security_stack: LocalStack, method: str) -> None:
    for path in UNKNOWN:
        response = requests.request(method, f"{security_stack.api_url}{path}", timeout=10,
                                    headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
        assert KEY not in response.text and KEY not in str(response.headers)
    known = requests.get(f"{security_stack.api_url}/health", timeout=10)
    assert known.status_code == 200
