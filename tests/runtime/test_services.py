"""services(): built once per container from the environment; lazy clients; providers per config."""

from __future__ import annotations

import pytest
import redis

from chalicelib.domain.config import Config
from chalicelib.domain.errors import InvalidInput
from chalicelib.runtime.services import Services, Settings, reset_services, services
from chalicelib.stores.locks import DynamoSessionLock, FallbackSessionLock
from chalicelib.stores.rate_limit import DynamoRateLimiter, FallbackRateLimiter
from tests.conftest import Aws


@pytest.fixture
def built(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Services:
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    reset_services()
    return services()


def test_settings_read_the_environment_with_defaults() -> None:
    settings = Settings.from_env(
        {
            "RUCHE_TABLE": "t",
            "RUCHE_MAX_BODY_BYTES": "123",
            "RUCHE_ADMIN_KEY": "adm",
            "RUCHE_ALLOW_PRIVATE_NETWORK": "1",
        }
    )
    assert (settings.table, settings.max_body_bytes, settings.admin_key) == ("t", 123, "adm")
    assert settings.platform_layer == {"network": {"allow_private": True}}
    defaults = Settings.from_env({"RUCHE_MAX_BODY_BYTES": "lots"})
    assert (defaults.max_body_bytes, defaults.redis_url, defaults.admin_key) == (5 * 1024 * 1024, None, None)


def test_services_are_built_once_until_reset(built: Services) -> None:
    assert services() is built
    assert built.dynamodb is built.dynamodb  # one client per container
    assert built.tenants is built.tenants
    reset_services()
    assert services() is not built


def test_without_redis_locks_and_rate_limits_live_in_dynamodb(built: Services) -> None:
    assert built.redis is None
    assert isinstance(built.session_lock, DynamoSessionLock)
    assert isinstance(built.rate_limiter, DynamoRateLimiter)
    token = built.session_lock.acquire("T#t1#lock", ttl_s=5)
    assert token is not None and built.session_lock.acquire("T#t1#lock", ttl_s=5) is None


def test_with_redis_locks_use_redis_first(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    kwargs = redis_client.connection_pool.connection_kwargs
    monkeypatch.setenv("REDIS_URL", f"redis://{kwargs['host']}:{kwargs['port']}/0")
    reset_services()
    built = services()
    assert isinstance(built.session_lock, FallbackSessionLock)
    assert isinstance(built.rate_limiter, FallbackRateLimiter)
    assert built.session_lock.acquire("s1", ttl_s=5) is not None
    assert redis_client.keys("ruche:lock:*")
    reset_services()


def test_the_llm_key_comes_from_the_tenant_secret_the_config_names(built: Services) -> None:
    built.secrets.put("t1", "openai", "sk-tenant")
    config = Config.model_validate({"llm": {"api_key_secret": "openai"}})
    assert built.api_key_for("t1", config) == "sk-tenant"
    with pytest.raises(InvalidInput):
        built.api_key_for("t2", config)
    assert built.api_key_for("t1", Config()) is None


def test_only_the_platform_names_an_environment_variable_for_the_key(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATFORM_OPENAI_KEY", "sk-platform")
    built = Services(
        Settings.from_env({"RUCHE_LLM_API_KEY_ENV": "PLATFORM_OPENAI_KEY"}),
        {"PLATFORM_OPENAI_KEY": "sk-platform"},
    )
    assert built.api_key_for("t1", built.platform_config) == "sk-platform"


def test_providers_follow_the_resolved_config(built: Services) -> None:
    assert built.llm_for("t1", Config()).name == "offline"
    first = built.embedder_for("t1", Config())
    assert built.embedder_for("t2", Config()) is first  # offline embedders are shared
    wider = built.embedder_for("t1", Config.model_validate({"embeddings": {"dimensions": 64}}))
    assert wider.dimensions == 64


def test_the_platform_config_reflects_the_environment(aws: Aws) -> None:
    built = Services(Settings.from_env({"RUCHE_ALLOW_PRIVATE_NETWORK": "true"}), {})
    assert built.platform_config.network.allow_private is True
    assert Services(Settings.from_env({}), {}).platform_config.network.allow_private is False
