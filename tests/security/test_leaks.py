"""Small leaks: what a refusal says about the platform's network, and secrets in access logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from infra.package import merged_template
from tests.api.harness import Api, error_of
from tests.integration.conftest import LocalStack

VERIFY_TOKEN = "verify-SECRET-token-0001"


def test_a_refusal_does_not_say_what_an_internal_name_resolves_to(api: Api) -> None:
    _, key = api.new_tenant()
    response = api.call("PUT", "/v1/config", key, {"llm": {"base_url": "http://localhost:9/v1"}})
    assert response.status_code == 422
    message = json.dumps(error_of(response))
    assert "localhost" in message  # the refusal names the tenant's own input, nothing more
    assert "127.0.0.1" not in message and "::1" not in message, message


def test_the_packaged_api_never_traces_request_data_into_its_logs() -> None:
    settings = merged_template("prod")["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert settings == [{"ResourcePath": "/*", "HttpMethod": "*", "DataTraceEnabled": False, "LoggingLevel": "OFF"}]


def chalice_log(stack: LocalStack) -> Path:
    return stack.logs / "chalice.log"


def logged_line_with(stack: LocalStack, marker: str, timeout_s: float = 15.0) -> str:
    """The access-log line that mentions `marker` (chalice local writes it after answering)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in chalice_log(stack).read_text(errors="replace").splitlines():
            if marker in line:
                return line
        time.sleep(0.2)
    pytest.fail(f"no access-log line mentions {marker!r}:\n{chalice_log(stack).read_text()[-2000:]}")


@pytest.mark.integration
def test_whatsapp_verify_token_never_lands_in_chalice_locals_access_log(security_stack: LocalStack) -> None:
    key = {"Authorization": f"Bearer {security_stack.tenant_key}"}
    secrets = {"app_secret": "meta-app-secret", "verify_token": VERIFY_TOKEN, "access_token": "EAAG-token",
               "phone_number_id": "1055"}
    created = requests.post(f"{security_stack.api_url}/v1/agents/retail-returns/channels", headers=key,
                            json={"channel": "whatsapp", "secrets": secrets}, timeout=10)
    assert created.status_code == 201, created.text
    binding_id = created.json()["binding_id"]
    hook = f"{security_stack.api_url}/v1/webhooks/whatsapp/{binding_id}"
    good = requests.get(hook, timeout=10, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                                  "hub.challenge": "challenge-4242"})
    assert (good.status_code, good.text) == (200, "challenge-4242")
    wrong = requests.get(hook, timeout=10, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN + "x",
                                                   "hub.challenge": "challenge-4343"})
    assert wrong.status_code == 403
    line = logged_line_with(security_stack, binding_id)  # the request was logged: the test can fail
    assert "hub.verify_token=***" in line, line
    assert VERIFY_TOKEN not in chalice_log(security_stack).read_text(errors="replace")
