"""Where the platform's own LLM key may go: only to the platform layer's own provider and base URL.

The platform layer may name an environment variable that holds the platform's key
(`llm.api_key_env`). A tenant-written layer (tenant, agent, channel, scenario, step) can change
where LLM and embedding calls go (`llm.provider`, `llm.base_url`, `embeddings.provider`); if the
platform's key followed, any tenant could read it off its own server. Two guards:

- on write, `platform_key_problems`: a layer that moves key-carrying calls away from the
  platform's destination must name its own key (`llm.api_key_secret`, a tenant secret), else 422;
- on every call, `may_use_platform_key`: the platform's key is attached only when the call goes to
  the platform's destination, whatever the stored layers say (layers written before this rule, or
  a platform that names a key after a tenant pointed elsewhere). Such a call is sent with no key.

Only OpenAI-compatible calls carry a key. Bedrock is signed by the container's IAM role and reaches
only AWS's own Bedrock endpoints (botocore accepts only region names as regions); offline and
replay call nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from chalicelib.domain.config import Config
from chalicelib.providers.llm import DEFAULT_BASE_URL

KEYED_PROVIDER = "openai"  # the one provider that sends llm.api_key_* as a bearer token
Calling = Literal["llm", "embeddings"]


def may_use_platform_key(config: Config, platform: Config, calling: Calling = "llm") -> bool:
    """True when a call of `calling` under `config` goes where the platform's own calls go."""
    provider = config.llm.provider if calling == "llm" else config.embeddings.provider
    return provider == platform.llm.provider and (
        _effective(config.llm.base_url) == _effective(platform.llm.base_url)
    )


def platform_key_problems(layer: Mapping[str, Any], path: str, platform: Config) -> list[tuple[str, str]]:
    """The (path, message) of a layer that sends key-carrying calls elsewhere without its own key.

    [] when the platform names no key (nothing to leak), when the layer names llm.api_key_secret,
    or when every destination it sets is the platform's. `path` prefixes the reported path
    ("" for the tenant layer, "agent.config", "scenarios[0].config", ...).
    """
    if not platform.llm.api_key_env:
        return []
    llm = _section(layer, "llm")
    if llm.get("api_key_secret") is not None:
        return []
    moved = []
    base_url = llm.get("base_url")
    if isinstance(base_url, str) and _effective(base_url) != _effective(platform.llm.base_url):
        moved.append("llm.base_url")
    if platform.llm.provider != KEYED_PROVIDER:  # the platform's key is not for an OpenAI-compatible API
        moved += [f"{name}.provider" for name in ("llm", "embeddings")
                  if _section(layer, name).get("provider") == KEYED_PROVIDER]
    if not moved:
        return []
    where = f"{path}.llm.api_key_secret" if path else "llm.api_key_secret"
    return [(where, f"required when a layer changes where LLM calls go ({', '.join(moved)}): the platform's "
                    "key goes only to the platform's own provider and base URL; store your key with "
                    "PUT /v1/secrets/{name} and name it here")]


def _section(layer: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = layer.get(name)
    return section if isinstance(section, Mapping) else {}


def _effective(base_url: str | None) -> str:
    """The base URL a call goes to, spelled one way (the scheme and host are case-insensitive)."""
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    scheme, sep, rest = url.partition("://")
    host, slash, tail = rest.partition("/")
    return f"{scheme.lower()}{sep}{host.lower()}{slash}{tail}"
