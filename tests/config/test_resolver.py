"""The config resolver: six layers, provenance for every key, nulls, nested merges, the cache."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.config.resolver import (
    ConfigPosition,
    ConfigResolver,
    layer_digest,
    layers_for,
    platform_layer_from_env,
    resolve,
)
from chalicelib.domain.bundle import PublishedBundle, parse_bundle
from chalicelib.domain.config import Config, Layer, validate_layer
from chalicelib.domain.errors import InvalidInput, NotFound


def a_bundle_doc(**agent_config: Any) -> dict[str, Any]:
    return {
        "agent": {"name": "a", "config": {"llm": {"temperature": 0.5}, **agent_config}},
        "scenarios": [
            {
                "id": "returns",
                "condition": "wants a return",
                "entry_step": "ask",
                "config": {"llm": {"tasks": {"judge": {"model": "judge-s"}}}},
                "steps": [{"id": "ask", "config": {"response": {"max_length": 300}}}],
            }
        ],
        "channels": {"twilio": {"config": {"response": {"format": "plain", "max_length": 160}}}},
    }


def published(version: int = 1, **agent_config: Any) -> PublishedBundle:
    return PublishedBundle(
        tenant_id="t1",
        agent_id="a1",
        version=version,
        bundle=parse_bundle(a_bundle_doc(**agent_config)),
        published_at="",
    )


def test_every_leaf_key_has_a_provenance_and_untouched_keys_say_platform() -> None:
    resolved = resolve([])
    assert resolved.config == Config()
    assert set(resolved.provenance.values()) == {"platform"}
    assert "llm.tasks.judge.model" in resolved.provenance
    assert "network.allow_private" in resolved.provenance
    assert "llm" not in resolved.provenance  # sections are not leaves


def test_six_layers_merge_with_the_later_layer_winning_and_report_who_set_each_key() -> None:
    bundle = published().bundle
    layers = layers_for(
        {"llm": {"max_tokens": 900}},
        {"llm": {"temperature": 0.9, "max_retries": 4}},
        bundle,
        ConfigPosition(channel="twilio", scenario_id="returns", step_id="ask"),
    )
    assert [layer for layer, _ in layers] == list(Layer)
    resolved = resolve(layers)
    config, provenance = resolved.config, resolved.provenance
    assert (config.llm.max_tokens, provenance["llm.max_tokens"]) == (900, "platform")
    assert (config.llm.max_retries, provenance["llm.max_retries"]) == (4, "tenant")
    assert (config.llm.temperature, provenance["llm.temperature"]) == (0.5, "agent")
    assert (config.response.format, provenance["response.format"]) == ("plain", "channel")
    assert (config.llm.tasks.judge.model, provenance["llm.tasks.judge.model"]) == ("judge-s", "scenario")
    assert (config.response.max_length, provenance["response.max_length"]) == (300, "step")


def test_null_in_a_higher_layer_never_overrides() -> None:
    resolved = resolve(
        [
            (Layer.TENANT, {"llm": {"temperature": 0.9}}),
            (Layer.AGENT, {"llm": {"temperature": None}, "response": None}),
        ]
    )
    assert resolved.config.llm.temperature == 0.9
    assert resolved.provenance["llm.temperature"] == "tenant"
    assert resolved.config.response == Config().response


def test_nested_sections_merge_key_by_key() -> None:
    resolved = resolve(
        [
            (Layer.TENANT, {"llm": {"tasks": {"judge": {"model": "big"}, "generation": {"model": "g"}}}}),
            (Layer.AGENT, {"llm": {"tasks": {"judge": {"temperature": 0.2}}}}),
        ]
    )
    judge = resolved.config.llm.tasks.judge
    assert (judge.model, judge.temperature, judge.max_tokens) == ("big", 0.2, 300)
    assert resolved.config.llm.tasks.generation.model == "g"
    assert resolved.provenance["llm.tasks.judge.model"] == "tenant"
    assert resolved.provenance["llm.tasks.judge.temperature"] == "agent"
    assert resolved.provenance["llm.tasks.judge.max_tokens"] == "platform"


def test_an_invalid_merge_is_invalid_input_with_the_key() -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve([(Layer.PLATFORM, {"llm": {"provider": "nope"}})])
    assert caught.value.details["errors"][0]["path"] == "llm.provider"


def test_unknown_keys_and_restricted_keys_are_rejected_when_a_layer_is_written() -> None:
    problems = validate_layer(
        {"llm": {"api_key_env": "AWS_SECRET_ACCESS_KEY", "colour": "red"}}, Layer.TENANT
    )
    paths = [path for path, _ in problems]
    assert "config.llm.api_key_env" in paths
    assert "config.llm.colour" in paths
    assert validate_layer({"llm": {"api_key_env": "OPENAI_API_KEY"}}, Layer.PLATFORM) == []


def test_layers_for_without_channel_or_scenario_has_three_layers_and_an_unconfigured_channel_is_empty() -> (
    None
):
    bundle = published().bundle
    assert [
        layer for layer, _ in layers_for({}, {}, bundle)
    ] == [Layer.PLATFORM, Layer.TENANT, Layer.AGENT]
    layers = layers_for({}, {}, bundle, ConfigPosition(channel="slack"))
    assert layers[-1] == (Layer.CHANNEL, {})


@pytest.mark.parametrize(
    ("channel", "scenario", "step", "error"),
    [
        ("fax", None, None, InvalidInput),
        (None, None, "ask", InvalidInput),
        (None, "nope", None, NotFound),
        (None, "returns", "nope", NotFound),
    ],
)
def test_unknown_positions_are_refused(
    channel: str | None, scenario: str | None, step: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        layers_for({}, {}, published().bundle, ConfigPosition(channel, scenario, step))


def test_the_resolver_caches_by_version_and_sees_a_changed_layer_on_the_next_call() -> None:
    resolver = ConfigResolver({"llm": {"max_tokens": 700}})
    first = resolver.for_turn({"llm": {"max_retries": 1}}, published(), ConfigPosition(channel="twilio"))
    assert resolver.for_turn({"llm": {"max_retries": 1}}, published(), ConfigPosition(channel="twilio")) is first
    changed_tenant = resolver.for_turn({"llm": {"max_retries": 3}}, published(), ConfigPosition(channel="twilio"))
    assert changed_tenant.config.llm.max_retries == 3
    new_version = resolver.for_turn(
        {"llm": {"max_retries": 1}}, published(2, llm={"max_tokens": 50}), ConfigPosition(channel="twilio")
    )
    assert (new_version.config.llm.max_tokens, new_version.provenance["llm.max_tokens"]) == (50, "agent")
    assert first.config.llm.max_tokens == 700
    resolver.clear()
    assert resolver.for_turn({"llm": {"max_retries": 1}}, published(), ConfigPosition(channel="twilio")) is not first


def test_the_cache_is_bounded() -> None:
    resolver = ConfigResolver({}, max_entries=2)
    first = resolver.for_turn({}, published(1))
    resolver.for_turn({}, published(2))
    resolver.for_turn({}, published(3))
    assert resolver.for_turn({}, published(1)) is not first


def test_layer_digest_depends_on_content_not_key_order() -> None:
    assert layer_digest({"a": 1, "b": {"c": 2}}) == layer_digest({"b": {"c": 2}, "a": 1})
    assert layer_digest({"a": 1}) != layer_digest({"a": 2})


def test_the_platform_layer_reads_its_overrides_from_the_environment() -> None:
    env = {
        "RUCHE_ALLOW_PRIVATE_NETWORK": "true",
        "RUCHE_LLM_PROVIDER": "openai",
        "RUCHE_LLM_BASE_URL": "http://127.0.0.1:8080/v1",
        "RUCHE_LLM_API_KEY_ENV": "OPENAI_API_KEY",
    }
    layer = platform_layer_from_env(env)
    config = resolve([(Layer.PLATFORM, layer)]).config
    assert config.network.allow_private is True
    assert (config.llm.provider, config.llm.base_url, config.llm.api_key_env) == (
        "openai",
        "http://127.0.0.1:8080/v1",
        "OPENAI_API_KEY",
    )
    assert platform_layer_from_env({"RUCHE_ALLOW_PRIVATE_NETWORK": "false"}) == {
        "network": {"allow_private": False}
    }
    assert platform_layer_from_env({}) == {}


def test_channels_that_render_no_markdown_default_to_plain_text_and_a_layer_can_override_it() -> None:
    bundle = published().bundle
    whatsapp = resolve(layers_for({}, {}, bundle, ConfigPosition(channel="whatsapp")))
    assert (whatsapp.config.response.format, whatsapp.config.response.max_length) == ("plain", 4096)
    assert whatsapp.provenance["response.format"] == "platform"
    webchat = resolve(layers_for({}, {}, bundle, ConfigPosition(channel="webchat")))
    assert webchat.config.response.format == "markdown"
    # The platform's own environment overrides still win over the channel defaults...
    platform = {"response": {"max_length": 900}}
    tuned = resolve(layers_for(platform, {}, bundle, ConfigPosition(channel="whatsapp")))
    assert (tuned.config.response.format, tuned.config.response.max_length) == ("plain", 900)
    # ...and so does any higher layer: the bundle's twilio layer sets 160 characters.
    twilio = resolve(layers_for({}, {"response": {"format": "markdown"}}, bundle,
                                ConfigPosition(channel="twilio")))
    assert (twilio.config.response.format, twilio.config.response.max_length) == ("plain", 160)
    assert twilio.provenance["response.format"] == "channel"


def test_tools_base_url_comes_from_the_environment_and_only_platform_tenant_and_agent_set_it() -> None:
    layer = platform_layer_from_env({"RUCHE_TOOLS_BASE_URL": "http://127.0.0.1:9000"})
    assert resolve([(Layer.PLATFORM, layer)]).config.tools.base_url == "http://127.0.0.1:9000"
    assert validate_layer({"tools": {"base_url": "https://tools.example.com"}}, Layer.AGENT) == []
    problems = validate_layer({"tools": {"base_url": "https://tools.example.com"}}, Layer.CHANNEL)
    assert [path for path, _ in problems] == ["config.tools.base_url"]
