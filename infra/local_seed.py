"""Seed the local stack through its own HTTP API: a demo tenant, and every bundle of examples/agents.

Uses only the public contract of API.md (POST /v1/tenants with the admin key, PUT /v1/agents/{id}
with a YAML body), so seeding also checks that the API and the example bundles agree.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local_processes import StartupError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "agents"
DEMO_TENANT = "Demo tenant"


@dataclass(frozen=True)
class Seeded:
    tenant_key: str
    agents: list[tuple[str, int]]  # (agent id, published version)


def bundle_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def call(method: str, url: str, token: str, body: bytes | None = None,
         content_type: str = "application/json") -> Any:
    """One API call; the parsed JSON answer, or StartupError naming the status and error envelope."""
    request = urllib.request.Request(url, data=body, method=method, headers={  # noqa: S310 - local URL
        "Authorization": f"Bearer {token}", "Content-Type": content_type, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise StartupError(f"{method} {url} answered {exc.code}: {_error_text(exc.read())}") from exc
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        raise StartupError(f"{method} {url} failed: {exc}") from exc


def _error_text(body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:300] or "(empty body)"
    problems = "; ".join(f"{item.get('path')}: {item.get('message')}"
                         for item in error.get("details", {}).get("errors", []))
    return f"{error.get('code')}: {error.get('message')}" + (f" ({problems})" if problems else "")


def seed(api_url: str, admin_key: str, tools_url: str, paths: list[Path] | None = None) -> Seeded:
    """Create the demo tenant, point its `tools.base_url` at the demo tools, and publish each bundle
    as written, under its file name (retail-returns.yaml -> agent `retail-returns`): the bundles'
    tool URLs are relative. Raises StartupError on the first refusal, with the API's reasons."""
    tenant = call("POST", f"{api_url}/v1/tenants", admin_key, json.dumps({"name": DEMO_TENANT}).encode())
    tenant_key = str(tenant["api_key"])
    call("PUT", f"{api_url}/v1/config", tenant_key, json.dumps({"tools": {"base_url": tools_url}}).encode())
    agents: list[tuple[str, int]] = []
    for path in bundle_paths() if paths is None else paths:
        published = call("PUT", f"{api_url}/v1/agents/{path.stem}", tenant_key, path.read_bytes(),
                         content_type="application/yaml")
        agents.append((str(published.get("agent_id", path.stem)), int(published.get("version", 1))))
    return Seeded(tenant_key=tenant_key, agents=agents)
