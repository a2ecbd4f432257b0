"""Ingest channel webhooks: verify, parse, dedupe, record in the session inbox, enqueue one turn each.

No turn runs here: the answer must reach the provider within its deadline (Slack 3 s, Twilio
15 s). Every verified message is first counted against the binding's, the visitor's and the
tenant's rate limits (runtime/limits.py; 429 with Retry-After, nothing written). Order per message:
the dedupe marker and the inbox item in one transaction that also checks the tenant and agent are
alive (the durable copy, before the 200; a redelivery writes nothing; a binding still cached after
a deletion writes nothing and answers 404), interlocutor, open session, then one SQS FIFO message
whose group is the session key (one turn per session at a time) and whose dedup id derives from
the provider message id. A request whose signature does not verify answers 403 before anything is
written.

Webchat has no provider signature: the binding's (public) token names the binding and a signed,
server-issued visitor token names the visitor (channels/webchat.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from aws_lambda_powertools import Logger

from chalicelib.channels import webchat, whatsapp
from chalicelib.channels.base import Handshake, InboundMessage, json_body
from chalicelib.channels.registry import WEBHOOK_ADAPTERS
from chalicelib.domain.channel import ChannelBinding
from chalicelib.domain.documents import parse_model
from chalicelib.domain.errors import InvalidInput, MethodNotAllowed, NotFound, PayloadTooLarge, Unavailable
from chalicelib.domain.ids import new_id, now_s
from chalicelib.domain.inbox import DedupeMark, InboxMessage
from chalicelib.domain.session import SessionKey
from chalicelib.runtime.limits import RATE_GATE
from chalicelib.runtime.queue_messages import TurnMessage
from chalicelib.runtime.queueing import send_record
from chalicelib.runtime.services import Services

logger = Logger(child=True)

DEDUPE_TTL_S = 86_400  # providers redeliver for hours (WhatsApp up to days); a day covers the usual cases


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int
    body: str
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Accepted:
    """What ingest did with one inbound message."""

    message_id: str
    session_id: str | None  # None when the worker opens the session (provider webhooks)
    is_new: bool  # False: a redelivery, nothing was stored or enqueued


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One provider webhook as it came in: what is verified, parsed and answered."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    raw_body: bytes
    url: str  # as the provider signed it (webhook_request_url)


def ingest_webhook(svc: Services, channel: str, binding_id: str, request: WebhookRequest) -> WebhookResponse:
    """Handle one provider webhook. Raises NotFound (unknown binding or channel), BadSignature,
    MethodNotAllowed, PayloadTooLarge, InvalidJson, InvalidInput, Unauthorized/Forbidden (webchat)
    and Unavailable (nothing could be enqueued: the provider should retry)."""
    method, query, raw_body = request.method, request.query, request.raw_body
    if len(raw_body) > svc.settings.max_body_bytes:
        raise PayloadTooLarge("the webhook body is too large", limit_bytes=svc.settings.max_body_bytes)
    binding = binding_for(svc, channel, binding_id)
    lowered = {name.lower(): value for name, value in request.headers.items()}
    if channel == "webchat":
        if method != "POST":
            raise MethodNotAllowed("webchat takes POST here; poll GET .../messages for the transcript")
        return _webchat_post(svc, binding, lowered, raw_body)
    adapter = WEBHOOK_ADAPTERS[channel]
    if method == "GET":
        if channel != "whatsapp":
            raise MethodNotAllowed(f"{channel} webhooks are POSTs")
        return _answer(whatsapp.handshake(binding, query))
    if method != "POST":
        raise MethodNotAllowed("webhooks are POSTs")
    adapter.verify(binding, lowered, raw_body, request.url)
    parsed = adapter.parse(binding, lowered, raw_body)
    if isinstance(parsed, Handshake):
        return _answer(parsed)
    for message in parsed:  # every message is counted before any is taken: a 429 stores nothing
        RATE_GATE.check_public(svc, binding.tenant_id, binding.binding_id, message.user_id)
    results = [accept(svc, binding, message, open_session=False) for message in parsed]
    logger.info("webhook accepted", extra={
        "channel": channel, "binding_id": binding.binding_id, "tenant_id": binding.tenant_id,
        "messages": len(results), "redeliveries": sum(1 for result in results if not result.is_new),
        "retry_num": lowered.get("x-slack-retry-num"),
    })
    return _answer(adapter.ack)


# Webhooks answer within the provider's deadline: a binding (one GetItem and one KMS Decrypt) is
# kept per container for BINDING_CACHE_S. The container that changes or removes a binding (or
# deletes its agent or tenant) forgets it at once (forget_binding, forget_all_bindings); another
# container may still use the old one for up to BINDING_CACHE_S, and then the liveness checks of
# the first write refuse a deleted tenant's or agent's posts (404, nothing written).
BINDING_CACHE_S = 5.0
_bindings: dict[str, tuple[float, ChannelBinding | None]] = {}


def forget_binding(binding_id: str) -> None:
    _bindings.pop(binding_id, None)


def forget_all_bindings() -> None:
    """A tenant was deleted: forget every binding this container holds (the cache is small)."""
    _bindings.clear()


def _cached_binding(svc: Services, binding_id: str) -> ChannelBinding | None:
    now = time.monotonic()
    hit = _bindings.get(binding_id)
    if hit is not None and now - hit[0] < BINDING_CACHE_S:
        return hit[1]
    binding = svc.bindings.get(binding_id)
    if len(_bindings) > 1024:
        _bindings.clear()
    _bindings[binding_id] = (now, binding)
    return binding


def binding_for(svc: Services, channel: str, binding_id: str) -> ChannelBinding:
    """The binding named by a webhook path; NotFound unless it exists and is of that channel."""
    binding = _cached_binding(svc, binding_id)
    if binding is None or binding.channel.value != channel or channel not in {*WEBHOOK_ADAPTERS, "webchat"}:
        raise NotFound("no such webhook", binding_id=binding_id)
    return binding


def accept(svc: Services, binding: ChannelBinding, message: InboundMessage, *, open_session: bool = True) -> Accepted:
    """Store the message durably (dedupe marker and inbox item in one transaction), then enqueue it.

    Provider webhooks must answer within the provider's deadline, so they leave resolving the
    interlocutor and opening the session to the worker (`open_session=False`); webchat answers
    with the session id, so it opens the session here. A redelivery of a message that is still
    pending sends its record again (a crash or a failed send may have left it without one); one
    that was answered changes nothing. Raises Unavailable (the provider retries) when DynamoDB or
    SQS cannot take it.
    """
    message_id = message_id_of(binding, message.provider_message_id)
    key = SessionKey(tenant_id=binding.tenant_id, agent_id=binding.agent_id, channel=message.channel,
                     user_id=message.user_id)
    is_new = svc.inbox.accept(key, InboxMessage(message_id, message.text, message.received_at),
                              DedupeMark(message.channel, message.provider_message_id, DEDUPE_TTL_S))
    session = None
    if open_session:
        interlocutor_id = svc.interlocutors.resolve(binding.tenant_id, message.channel, message.user_id)
        session = svc.sessions.open(key, interlocutor_id, now_s())
    session_id = session.session_id if session else None
    if is_new or svc.inbox.is_pending(key, message_id):
        send_record(svc, TurnMessage.of(key, message_id=message_id, text=message.text,
                                        received_at=message.received_at, session_id=session_id,
                                        binding_id=binding.binding_id, reply_to=dict(message.reply_to),
                                        provider_message_id=message.provider_message_id))
    return Accepted(message_id=message_id, session_id=session_id, is_new=is_new)


def message_id_of(binding: ChannelBinding, provider_message_id: str) -> str:
    """Our id of an inbound message: stable, so a redelivery or a retried webchat POST gets the same one."""
    material = f"{binding.tenant_id}|{binding.channel.value}|{provider_message_id}"
    return "msg_" + hashlib.sha256(material.encode()).hexdigest()[:32]


# --- webchat -------------------------------------------------------------------------------------

def _webchat_post(svc: Services, binding: ChannelBinding, headers: Mapping[str, str],
                  raw_body: bytes) -> WebhookResponse:
    webchat.check_binding_token(binding, headers)
    post = parse_model(webchat.WebchatPost, json_body(raw_body))
    secret = webchat_secret(svc)
    known = webchat.visitor_of(binding, post.visitor_token, secret) if post.visitor_token else None
    # Counted before a visitor is minted or anything is written: a refused post opens no session.
    RATE_GATE.check_public(svc, binding.tenant_id, binding.binding_id, known)
    token = post.visitor_token or webchat.issue_visitor_token(binding, secret)
    visitor = known or webchat.visitor_of(binding, token, secret)
    # A client message id is scoped to its visitor: two visitors may both send "1".
    provider_id = f"{visitor}:{post.client_message_id}" if post.client_message_id else new_id("wc")
    text = post.message.strip()
    if not text:
        raise InvalidInput.at("message", "is empty")
    message = InboundMessage(channel="webchat", binding_id=binding.binding_id, provider_message_id=provider_id,
                             user_id=visitor, text=text, received_at=now_s())
    accepted = accept(svc, binding, message)
    body = {"visitor_token": token, "session_id": accepted.session_id, "message_id": accepted.message_id}
    return WebhookResponse(202, json.dumps(body))


def webchat_messages(svc: Services, binding_id: str, headers: Mapping[str, str],
                     after: str | None) -> dict[str, list[dict[str, str]]]:
    """The visitor's transcript, {"messages": [...]} oldest first. Raises NotFound, Unauthorized, Forbidden."""
    binding = binding_for(svc, "webchat", binding_id)
    lowered = {name.lower(): value for name, value in headers.items()}
    webchat.check_binding_token(binding, lowered)
    visitor = webchat.visitor_of(binding, lowered.get("x-visitor-token", ""), webchat_secret(svc))
    key = SessionKey(tenant_id=binding.tenant_id, agent_id=binding.agent_id, channel="webchat", user_id=visitor)
    interlocutor_id = svc.interlocutors.resolve(binding.tenant_id, "webchat", visitor)
    session = svc.sessions.open(key, interlocutor_id, now_s())
    found = svc.sessions.messages(binding.tenant_id, session.session_id, after=after or None)
    return {"messages": [{"message_id": message.message_id, "role": message.role, "text": message.text,
                          "created_at": message.created_at} for message in found]}


def webchat_secret(svc: Services) -> bytes:
    """The server secret under which visitor tokens are signed: RUCHE_WEBCHAT_SECRET, else the admin key.

    Raises Unavailable when neither is set: without a server secret anyone holding the public
    binding token could mint visitor tokens.
    """
    secret = os.environ.get("RUCHE_WEBCHAT_SECRET") or svc.settings.admin_key
    if not secret:
        raise Unavailable("webchat needs RUCHE_WEBCHAT_SECRET (or RUCHE_ADMIN_KEY) to sign visitor tokens")
    return secret.encode()


def webhook_request_url(base: str, channel: str, binding_id: str, query: Mapping[str, str]) -> str:
    """The URL the provider called (Twilio signs it): the public base, the webhook path, the query."""
    path = f"{base}/v1/webhooks/{channel}/{binding_id}"
    return f"{path}?{urlencode(dict(query))}" if query else path


def _answer(handshake: Handshake) -> WebhookResponse:
    return WebhookResponse(handshake.status, handshake.body, handshake.content_type)
