"""The app in-process (Chalice's test client) over moto: fixtures and small request helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.api.auth import KEY_CACHE
from chalicelib.runtime.services import Services, reset_services, services
from tests.conftest import Aws

ADMIN_KEY = "admin-secret-for-tests"


@dataclass
class Api:
    """The test client with the platform's admin key and helpers that speak JSON."""

    client: Client
    services: Services

    def call(
        self,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
    ) -> Any:
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        data = raw if raw is not None else (b"" if body is None else json.dumps(body))
        data = data.encode() if isinstance(data, str) else data
        return self.client.http.request(method, path, headers=all_headers, body=data)

    def new_tenant(self, name: str = "acme") -> tuple[str, str]:
        """(tenant_id, api_key) of a fresh tenant."""
        response = self.call("POST", "/v1/tenants", ADMIN_KEY, {"name": name})
        assert response.status_code == 201, response.body
        return response.json_body["tenant_id"], response.json_body["api_key"]


@pytest.fixture
def api(aws: Aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Api]:
    """The app wired to the moto stack; Services built once from this environment (as in a container)."""
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RUCHE_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("RUCHE_ALLOW_PRIVATE_NETWORK", raising=False)
    reset_services()
    KEY_CACHE.clear()
    built = services()
    # No project config: the test client would otherwise apply .chalice/config.json's stage variables.
    with Client(app, project_dir=str(tmp_path)) as client:
        yield Api(client=client, services=built)
    reset_services()
    KEY_CACHE.clear()


def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json_body["error"]
    return body


def paths_of(response: Any) -> list[str]:
    return [error["path"] for error in error_of(response)["details"]["errors"]]


def a_bundle(**overrides: Any) -> dict[str, Any]:
    """A small valid bundle: a field, a tool, two templates, a rule, a scenario with two steps."""
    bundle: dict[str, Any] = {
        "agent": {"name": "Support", "config": {"response": {"max_length": 500}}},
        "fields": [
            {"name": "email", "type": "email", "pii": True},
            {"name": "order_id", "type": "string"},
            {"name": "mood", "type": "string", "scope": "session"},
            {"name": "tier", "type": "enum", "values": ["gold", "silver"], "sources": ["tool"]},
        ],
        "tools": [{"id": "lookup", "url": "https://example.com/lookup", "inputs": ["order_id"]}],
        "templates": [
            {"id": "greet", "mode": "suggest", "text": "Hello!"},
            {"id": "sorry", "mode": "fallback", "text": "Sorry, let me get a human."},
        ],
        "rules": [
            {
                "id": "refunds",
                "condition": "the user asks for a refund",
                "action": "explain the policy",
                "templates": ["greet"],
                "tools": ["lookup"],
            }
        ],
        "scenarios": [
            {
                "id": "returns",
                "condition": "the user wants to return an item",
                "entry_step": "ask",
                "config": {"llm": {"temperature": 0.1}},
                "steps": [
                    {
                        "id": "ask",
                        "required_fields": ["order_id"],
                        "config": {"enforcement": {"max_regeneration_attempts": 1}},
                        "transitions": [{"to": "done", "condition": "the order id is known"}],
                    },
                    {"id": "done", "terminal": True},
                ],
            }
        ],
        "channels": {"webchat": {"config": {"response": {"format": "plain"}}}},
    }
    bundle.update(overrides)
    return bundle
