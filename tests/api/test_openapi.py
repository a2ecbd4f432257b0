"""The OpenAPI document: exactly the app's routes, served without auth, kept in docs/."""

from __future__ import annotations

import json
from pathlib import Path

from app import app
from chalicelib.api.openapi import ROUTES, document, main
from tests.api.harness import Api

ROOT = Path(__file__).resolve().parents[2]


def test_the_route_table_lists_exactly_the_apps_routes() -> None:
    registered = {(path, method) for path, methods in app.routes.items() for method in methods}
    assert {(route.path, route.method) for route in ROUTES} == registered


def test_the_document_has_every_route_with_its_security(api: Api) -> None:
    response = api.call("GET", "/v1/openapi.json")
    assert response.status_code == 200
    served = response.json_body
    assert served["openapi"].startswith("3.1")
    operations = {(path, method.upper()) for path, item in served["paths"].items() for method in item}
    assert operations == {(route.path, route.method) for route in ROUTES}
    assert "security" not in served["paths"]["/health"]["get"]
    assert served["paths"]["/v1/tenants"]["post"]["security"] == [{"adminKey": []}]
    put_agent = served["paths"]["/v1/agents/{agent_id}"]["put"]
    assert set(put_agent["requestBody"]["content"]) == {
        "application/json",
        "application/yaml",
        "application/x-yaml",
    }
    assert "AgentBundle" in served["components"]["schemas"]
    assert "409" in put_agent["responses"]


def test_health_needs_no_key(api: Api) -> None:
    assert api.call("GET", "/health").json_body == {"status": "ok"}


def test_docs_openapi_json_is_up_to_date() -> None:
    assert json.loads((ROOT / "docs" / "openapi.json").read_text()) == json.loads(json.dumps(document()))


def test_the_command_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "out" / "openapi.json"
    assert main([str(target)]) == 0
    assert json.loads(target.read_text())["paths"].keys() == document()["paths"].keys()
