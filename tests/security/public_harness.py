"""The app in-process over moto and a real redis-server, as a hostile visitor or tenant meets it.

Public endpoints (webhooks, webchat) are driven over the app's HTTP path with the same helpers as
tests/runtime/test_ingest.py; the rate limiter counts in the real Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from chalice.test import Client

from app import app
from chalicelib.api.auth import KEY_CACHE
from chalicelib.domain.channel import ChannelName
from chalicelib.runtime.limits import RATE_GATE
from chalicelib.runtime.services import reset_services, services
from tests.api.harness import ADMIN_KEY, Api, a_bundle
from tests.channels.factories import SECRETS
from tests.conftest import Aws, RedisServer

WINDOW_START = 1_800_000_000.0  # a multiple of 60: a burst never straddles two rate-limit windows


@pytest.fixture
def public_api(aws: Aws, redis_server: RedisServer, redis_client: redis.Redis,
               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Api]:
    """The app wired to moto and the real Redis (locks, inboxes, rate-limit counters)."""
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RUCHE_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("RUCHE_ALLOW_PRIVATE_NETWORK", raising=False)
    reset_services()
    KEY_CACHE.clear()
    with Client(app, project_dir=str(tmp_path)) as client:
        yield Api(client=client, services=services())
    reset_services()
    KEY_CACHE.clear()


@pytest.fixture
def minute(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The rate limiter's wall clock, frozen at the start of a window (advance it by hand)."""
    now = [WINDOW_START]
    monkeypatch.setattr(RATE_GATE, "clock", lambda: now[0])
    yield now


def bound(api: Api, channel: ChannelName, config: dict[str, Any] | None = None) -> tuple[str, str, str]:
    """(tenant_id, tenant key, binding id): a tenant with an agent, a tenant layer and one binding."""
    tenant_id, key = api.new_tenant()
    if config is not None:
        assert api.call("PUT", "/v1/config", key, config).status_code == 200
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    created = api.call("POST", "/v1/agents/support/channels", key,
                       {"channel": channel.value, "secrets": SECRETS[channel]})
    assert created.status_code == 201, created.body
    return tenant_id, key, str(created.json_body["binding_id"])


def table_items(aws: Aws) -> list[dict[str, Any]]:
    """Every item of the main table (a consistent, paged Scan)."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": aws.table, "ConsistentRead": True}
    while True:
        page = aws.dynamodb.scan(**params)
        items += page["Items"]
        if not page.get("LastEvaluatedKey"):
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def sessions_of(aws: Aws, tenant_id: str) -> list[dict[str, Any]]:
    return [item for item in table_items(aws)
            if item["pk"]["S"].startswith(f"T#{tenant_id}#S#") and item["sk"]["S"] == "SESSION"]
