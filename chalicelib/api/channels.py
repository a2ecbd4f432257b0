"""Channel bindings through the API: create, update, read, list, remove; secrets are write-only.

The binding id is issued by the server (unguessable), so a webhook URL names exactly one binding
of one tenant. Another tenant's binding, or one of another agent, answers 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.page_security import origin_problem
from chalicelib.api.pagination import PageRequest, paginate
from chalicelib.api.views import BindingCreated, BindingPage, BindingView
from chalicelib.api.webchat_page import EMBED_ORIGINS
from chalicelib.channels.whatsapp import API_VERSION
from chalicelib.domain.channel import REQUIRED_SECRETS, ChannelBinding, ChannelName
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.ids import new_id, now_iso
from chalicelib.providers.network import check_url
from chalicelib.runtime.agents import load
from chalicelib.runtime.ingest import forget_binding
from chalicelib.runtime.services import Services


class BindingCreate(BaseModel):
    """Body of POST /v1/agents/{agent_id}/channels."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    channel: ChannelName
    secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    api_base_url: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class BindingUpdate(BaseModel):
    """Body of PUT .../channels/{binding_id}: given secrets replace those names; config replaces."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    channel: ChannelName | None = None
    secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    api_base_url: str | None = None
    config: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BindingRef:
    """The binding a route names, with the tenant and agent it must belong to (else 404)."""

    tenant_id: str
    agent_id: str
    binding_id: str


def base_url(headers: Mapping[str, str], context: Mapping[str, Any]) -> str:
    """The public base URL of this API, from the request: scheme, host and (on API Gateway) stage."""
    host = headers.get("host") or headers.get("Host") or "localhost"
    local = host.split(":", 1)[0] in {"localhost", "127.0.0.1"}
    scheme = headers.get("x-forwarded-proto") or ("http" if local else "https")
    stage = context.get("stage") if ".execute-api." in host else None
    return f"{scheme}://{host}" + (f"/{stage}" if stage else "")


def webhook_url(base: str, binding: ChannelBinding) -> str:
    return f"{base}/v1/webhooks/{binding.channel.value}/{binding.binding_id}"


def create(
    services: Services, tenant_id: str, agent_id: str, body: BindingCreate, base: str
) -> BindingCreated:
    """Store a new binding. Raises InvalidInput, NotFound (agent)."""
    load(services, tenant_id, agent_id)
    binding = ChannelBinding(
        binding_id=new_id("bnd"),
        tenant_id=tenant_id,
        agent_id=agent_id,
        channel=body.channel,
        secrets=body.secrets,
        api_base_url=body.api_base_url,
        config=body.config,
        created_at=now_iso(),
    )
    _check(services, binding)
    services.bindings.put(binding)
    forget_binding(binding.binding_id)
    return BindingCreated(binding_id=binding.binding_id, webhook_url=webhook_url(base, binding))


def update(services: Services, ref: BindingRef, body: BindingUpdate, *, base: str) -> BindingView:
    """Change a binding's secrets, api_base_url or config; returns its public view."""
    current = _owned(services, ref)
    if body.channel is not None and body.channel is not current.channel:
        raise InvalidInput.at("channel", "a binding's channel cannot change (create a new binding)")
    changes: dict[str, Any] = {"secrets": {**current.secrets, **body.secrets}}
    if "api_base_url" in body.model_fields_set:
        changes["api_base_url"] = body.api_base_url
    if body.config is not None:
        changes["config"] = body.config
    binding = current.model_copy(update=changes)
    _check(services, binding)
    services.bindings.put(binding)
    forget_binding(binding.binding_id)
    return view(binding, base)


def get(services: Services, ref: BindingRef, base: str) -> BindingView:
    return view(_owned(services, ref), base)


def list_bindings(services: Services, tenant_id: str, agent_id: str, *, base: str, page: PageRequest) -> BindingPage:
    load(services, tenant_id, agent_id)
    found, cursor = paginate(services.bindings.list(tenant_id, agent_id), page)
    return BindingPage(channels=[view(binding, base) for binding in found], next_cursor=cursor)


def delete(services: Services, ref: BindingRef) -> None:
    _owned(services, ref)
    forget_binding(ref.binding_id)
    if not services.bindings.delete(ref.tenant_id, ref.binding_id):
        raise NotFound("no such channel binding", binding_id=ref.binding_id)


def view(binding: ChannelBinding, base: str) -> BindingView:
    return BindingView.of(binding, webhook_url(base, binding))


def _owned(services: Services, ref: BindingRef) -> ChannelBinding:
    binding = services.bindings.get(ref.binding_id)
    if binding is None or binding.tenant_id != ref.tenant_id or binding.agent_id != ref.agent_id:
        raise NotFound("no such channel binding", binding_id=ref.binding_id)
    return binding


def _check(services: Services, binding: ChannelBinding) -> None:
    """Every problem at once: the api channel, missing or unknown secrets, a refused api_base_url."""
    if binding.channel is ChannelName.API:
        raise InvalidInput.at("channel", "the api channel needs no binding (use POST .../turns)")
    required = REQUIRED_SECRETS.get(binding.channel, ())
    problems = [
        (f"secrets.{name}", "required for this channel") for name in required if not binding.secrets.get(name)
    ]
    problems += [
        (f"secrets.{name}", f"unknown secret for {binding.channel.value} (known: {', '.join(required)})")
        for name in sorted(binding.secrets)
        if name not in required
    ]
    version = binding.config.get("api_version")
    if binding.channel is ChannelName.WHATSAPP and version is not None and not (
        isinstance(version, str) and API_VERSION.fullmatch(version)
    ):
        problems.append(("config.api_version", "must be a Graph API version like v21.0"))
    origins = binding.config.get(EMBED_ORIGINS)
    if binding.channel is ChannelName.WEBCHAT and origins is not None:
        if not isinstance(origins, list):
            problems.append((f"config.{EMBED_ORIGINS}", "must be a list of origins like https://shop.example.com"))
        else:
            problems += [(f"config.{EMBED_ORIGINS}[{index}]", problem) for index, origin in enumerate(origins)
                         if (problem := origin_problem(origin)) is not None]
    if binding.api_base_url is not None:
        try:
            check_url(
                binding.api_base_url,
                services.platform_config.network.allow_private,
                at_publish=True,
                path="api_base_url",
            )
        except InvalidInput as exc:
            problems += [(error["path"], error["message"]) for error in exc.details.get("errors", [])]
    if problems:
        raise InvalidInput.many(problems)

