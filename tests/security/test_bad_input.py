"""Hostile input that used to crash a route with a 500: every answer is a 4xx in the envelope.

Played over the app's HTTP path (Chalice's in-process gateway over moto): non-ASCII signature
headers on every webhook, JSON and YAML nested 100,000 levels, a 5,000-digit YAML integer.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from chalicelib.domain.channel import ChannelName
from tests.api.harness import Api, a_bundle, error_of
from tests.channels.factories import SECRETS
from tests.conftest import Aws

NON_ASCII = "sha256=é☃" + "0" * 40


def bound(api: Api, channel: ChannelName) -> tuple[str, str]:
    """(tenant key, binding id) of a fresh tenant's binding of `channel`."""
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    created = api.call("POST", "/v1/agents/support/channels", key,
                       {"channel": channel.value, "secrets": SECRETS[channel]})
    assert created.status_code == 201, created.body
    return key, str(created.json_body["binding_id"])


def queued(aws: Aws) -> list[Any]:
    return aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])


def whatsapp_document() -> dict[str, Any]:
    message = {"from": "33612345678", "id": "wamid.X", "timestamp": "1700000000", "type": "text",
               "text": {"body": "hi"}}
    return {"entry": [{"changes": [{"field": "messages", "value": {"messages": [message]}}]}]}


def test_non_ascii_twilio_signature_is_403_and_nothing_is_queued(api: Api, aws: Aws) -> None:
    _, binding_id = bound(api, ChannelName.TWILIO)
    response = api.call("POST", f"/v1/webhooks/twilio/{binding_id}", raw="MessageSid=SM1&From=%2B1&Body=hi",
                        content_type="application/x-www-form-urlencoded",
                        headers={"X-Twilio-Signature": "é☃=="})
    assert (response.status_code, error_of(response)["code"]) == (403, "invalid_signature")
    assert queued(aws) == []


def test_non_ascii_whatsapp_signature_is_403_and_nothing_is_queued(api: Api, aws: Aws) -> None:
    _, binding_id = bound(api, ChannelName.WHATSAPP)
    response = api.call("POST", f"/v1/webhooks/whatsapp/{binding_id}", raw=json.dumps(whatsapp_document()),
                        headers={"X-Hub-Signature-256": NON_ASCII})
    assert (response.status_code, error_of(response)["code"]) == (403, "invalid_signature")
    assert queued(aws) == []


def test_non_ascii_whatsapp_verify_token_is_403(api: Api) -> None:
    _, binding_id = bound(api, ChannelName.WHATSAPP)
    query = "hub.mode=subscribe&hub.challenge=42&hub.verify_token=%C3%A9%E2%98%83"
    response = api.call("GET", f"/v1/webhooks/whatsapp/{binding_id}?{query}")
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_a_non_ascii_slack_signature_is_403_and_nothing_is_queued(api: Api, aws: Aws) -> None:
    _, binding_id = bound(api, ChannelName.SLACK)
    body = json.dumps({"type": "event_callback", "event": {"type": "message", "user": "U1", "text": "hi"}})
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SECRETS[ChannelName.SLACK]["signing_secret"]).generate_signature(
        timestamp=stamp, body=body)
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": str(signature)[:-2] + "é☃"}
    response = api.call("POST", f"/v1/webhooks/slack/{binding_id}", raw=body, headers=headers)
    assert (response.status_code, error_of(response)["code"]) == (403, "invalid_signature")
    assert queued(aws) == []


def test_a_5000_digit_slack_timestamp_is_403(api: Api) -> None:
    _, binding_id = bound(api, ChannelName.SLACK)
    response = api.call("POST", f"/v1/webhooks/slack/{binding_id}", raw="{}",
                        headers={"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=00"})
    assert (response.status_code, error_of(response)["code"]) == (403, "invalid_signature")


def test_non_ascii_webchat_token_and_visitor_token_are_refused(api: Api, aws: Aws) -> None:
    _, binding_id = bound(api, ChannelName.WEBCHAT)
    path = f"/v1/webhooks/webchat/{binding_id}"
    wrong_token = api.call("POST", path, body={"message": "hi"}, headers={"Authorization": "Bearer é☃"})
    assert (wrong_token.status_code, error_of(wrong_token)["code"]) == (401, "unauthorized")
    token = SECRETS[ChannelName.WEBCHAT]["token"]
    visitor = api.call("POST", path, body={"message": "hi", "visitor_token": "vt_" + "a" * 32 + ".é☃"},
                       headers={"Authorization": f"Bearer {token}"})
    assert visitor.status_code in {400, 403, 422}, visitor.body
    assert "error" in visitor.json_body
    messages = api.call("GET", f"{path}/messages", headers={"Authorization": f"Bearer {token}",
                                                            "X-Visitor-Token": "vt_" + "b" * 32 + ".é☃"})
    assert messages.status_code in {400, 403}, messages.body
    assert queued(aws) == []


def nested_json(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [100_000, 500])
def test_deeply_nested_json_bodies_are_400_everywhere(api: Api, aws: Aws, levels: int) -> None:
    _, key = api.new_tenant()
    agent = api.call("PUT", "/v1/agents/deep", key, raw='{"agent": {"config": ' + nested_json(levels) + "}}")
    config = api.call("PUT", "/v1/config", key, raw='{"llm": ' + nested_json(levels) + "}")
    _, binding_id = bound(api, ChannelName.WEBCHAT)
    webchat = api.call("POST", f"/v1/webhooks/webchat/{binding_id}", raw=nested_json(levels),
                       headers={"Authorization": f"Bearer {SECRETS[ChannelName.WEBCHAT]['token']}"})
    for response in (agent, config, webchat):
        assert (response.status_code, error_of(response)["code"]) == (400, "invalid_json"), response.body
        assert "nested too deeply" in error_of(response)["message"]
    assert api.call("GET", "/v1/agents/deep", key).status_code == 404  # nothing half-written
    assert api.call("GET", "/v1/config", key).json_body == {}
    assert queued(aws) == []


def test_deeply_nested_json_in_a_signed_whatsapp_webhook_is_400(api: Api, aws: Aws) -> None:
    import hashlib
    import hmac

    _, binding_id = bound(api, ChannelName.WHATSAPP)
    raw = ('{"entry": ' + nested_json(100_000) + "}").encode()
    secret = SECRETS[ChannelName.WHATSAPP]["app_secret"].encode()
    signature = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    response = api.call("POST", f"/v1/webhooks/whatsapp/{binding_id}", raw=raw,
                        headers={"X-Hub-Signature-256": signature})
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_json")
    assert queued(aws) == []


@pytest.mark.parametrize("levels", [100_000, 500])
def test_deeply_nested_yaml_bundle_is_400_and_nothing_is_published(api: Api, levels: int) -> None:
    _, key = api.new_tenant()
    document = "agent: {config: " + "[" * levels + "]" * levels + "}\n"
    response = api.call("PUT", "/v1/agents/deep", key, raw=document, content_type="application/yaml")
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_json"), response.body
    assert api.call("GET", "/v1/agents/deep", key).status_code == 404


def test_deeply_nested_block_yaml_is_400(api: Api) -> None:
    _, key = api.new_tenant()
    document = "".join(f"{' ' * depth}k{depth}:\n" for depth in range(300)) + " " * 300 + "x: 1\n"
    response = api.call("PUT", "/v1/agents/deep", key, raw=document, content_type="application/yaml")
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_json"), response.body


def test_a_5000_digit_yaml_integer_is_400_and_nothing_is_published(api: Api) -> None:
    _, key = api.new_tenant()
    bundle = a_bundle()
    document = json.dumps(bundle)[:-1] + ', "x": 1}'  # valid JSON is valid YAML; swap in the integer
    document = document.replace('"max_length": 500', '"max_length": ' + "9" * 5000)
    response = api.call("PUT", "/v1/agents/huge", key, raw=document, content_type="application/yaml")
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_json"), response.body
    assert api.call("GET", "/v1/agents/huge", key).status_code == 404
    as_json = api.call("PUT", "/v1/agents/huge", key, raw=document)
    assert as_json.status_code == 400
