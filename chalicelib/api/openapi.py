"""The OpenAPI 3.1 document of the HTTP API, generated from ROUTES (api/routes.py, the one route table).

app.py registers exactly these routes, through that table; a test compares ROUTES with `app.routes`,
so the document cannot drift from the app. `python -m chalicelib.api.openapi [path]` writes
docs/openapi.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chalicelib.api.body import ACCEPTED_CONTENT_TYPES
from chalicelib.api.routes import ROUTES, Route
from chalicelib.runtime.agents import ITEM_KINDS

__all__ = ["ROUTES", "Route", "document", "main"]  # tests read the table through the document module

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "properties": {
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                            },
                        }
                    },
                },
            },
        }
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ROUTES."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ruche",
            "version": "1",
            "description": "Multi-tenant runtime for conversational agents",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "tenantKey": {"type": "http", "scheme": "bearer", "description": "a tenant API key"},
                "adminKey": {"type": "http", "scheme": "bearer", "description": "the platform admin key"},
            },
        },
    }


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    params = [
        {"name": name[1:-1], "in": "path", "required": True, "schema": _path_schema(name)}
        for name in route.path.split("/")
        if name.startswith("{")
    ]
    params += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in route.query
    ]
    params += [
        {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        for name in route.headers
    ]
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": _operation_id(route),
        "parameters": params,
        "responses": _responses(route, schemas),
    }
    if route.auth in ("tenant", "admin"):  # a channel's credential is no key of ours
        operation["security"] = [{"tenantKey" if route.auth == "tenant" else "adminKey": []}]
    body_schema = (
        _ref(route.body, schemas)
        if route.body
        else ({"type": "object", "description": route.free_body} if route.free_body else None)
    )
    if body_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": body_schema} for media in ACCEPTED_CONTENT_TYPES},
        }
    return operation


def _path_schema(segment: str) -> dict[str, Any]:
    if segment == "{kind}":
        return {"type": "string", "enum": sorted(ITEM_KINDS)}
    return {"type": "string"}


def _responses(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    error = {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    success: dict[str, Any] = {"description": "success"}
    if route.status != 204:
        schema = _ref(route.reply, schemas) if route.reply else {"type": "object"}
        success["content"] = {"application/json": {"schema": schema}}
    responses: dict[str, Any] = {str(route.status): success}
    codes = ["400", "413", "422"] if route.body or route.free_body else (["422"] if "from" in route.query else [])
    codes += {"none": [], "channel": ["401", "403", "404"]}.get(route.auth, ["401", "404"])
    codes += ["409"] if "If-Match" in route.headers or route.conflicts else []
    codes += ["429", "500"]
    responses.update({code: error for code in codes})
    return responses


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation_id(route: Route) -> str:
    words = [part.strip("{}") for part in route.path.split("/") if part and part != "v1"]
    return route.method.lower() + "_" + "_".join(words).replace(".", "_").replace("-", "_")


def main(argv: list[str] | None = None) -> int:
    """Write the document (default docs/openapi.json)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "docs/openapi.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
