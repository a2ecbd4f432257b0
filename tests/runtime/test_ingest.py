"""Channel webhooks through the app in-process: signatures, handshakes, dedupe, the queue, webchat."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from chalicelib.domain.channel import ChannelName
from chalicelib.domain.session import SessionKey
from chalicelib.domain.turn import Outcome, TranscriptMessage, TurnCommit, TurnRecord
from chalicelib.runtime.services import reset_services
from tests.api.harness import Api, a_bundle
from tests.channels.factories import SECRETS
from tests.conftest import Aws

HOST = "hooks.example.com"


# --- helpers -----------------------------------------------------------------------------------------

def bound(api: Api, channel: ChannelName) -> str:
    """A tenant with a published agent and one binding of `channel`; its binding id."""
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    created = api.call("POST", "/v1/agents/support/channels", key,
                       {"channel": channel.value, "secrets": SECRETS[channel]})
    assert created.status_code == 201, created.body
    return str(created.json_body["binding_id"])


def queued(aws: Aws) -> list[dict[str, Any]]:
    """Every message on the turn queue (FIFO: receive until empty, each group in turn)."""
    found: list[dict[str, Any]] = []
    for _ in range(10):
        batch = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10,
                                        AttributeNames=["All"]).get("Messages", [])
        if not batch:
            break
        for message in batch:
            found.append({**json.loads(message["Body"]), "_group": message["Attributes"]["MessageGroupId"]})
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def dedupe_markers(aws: Aws) -> list[dict[str, Any]]:
    items = aws.dynamodb.scan(TableName=aws.table)["Items"]
    return [item for item in items if "#DEDUPE#" in item["pk"]["S"] or "#INBOX#" in item["pk"]["S"]]


def post_twilio(api: Api, binding_id: str, form: dict[str, str], signature: str | None = None) -> Any:
    url = f"https://{HOST}/v1/webhooks/twilio/{binding_id}"
    signed = signature or RequestValidator(SECRETS[ChannelName.TWILIO]["auth_token"]).compute_signature(url, form)
    return api.call("POST", f"/v1/webhooks/twilio/{binding_id}", raw=urlencode(form),
                    content_type="application/x-www-form-urlencoded",
                    headers={"Host": HOST, "X-Twilio-Signature": signed})


def sms(sid: str = "SM0001", body: str = "Where is my order?") -> dict[str, str]:
    return {"MessageSid": sid, "From": "+15550001", "To": "+15559999", "Body": body, "NumMedia": "0"}


def post_slack(api: Api, binding_id: str, document: dict[str, Any], *, timestamp: int | None = None,
               secret: str | None = None, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps(document)
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    verifier = SignatureVerifier(secret or SECRETS[ChannelName.SLACK]["signing_secret"])
    signature = verifier.generate_signature(timestamp=stamp, body=body)
    return api.call("POST", f"/v1/webhooks/slack/{binding_id}", raw=body,
                    headers={"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": str(signature),
                             **(headers or {})})


def slack_message(**event: Any) -> dict[str, Any]:
    base = {"type": "message", "user": "U123", "channel": "D42", "ts": "1700000000.000100",
            "text": "<@UBOT> hello there"}
    return {"type": "event_callback", "event_id": "Ev1", "event": {**base, **event}}


def post_whatsapp(api: Api, binding_id: str, document: dict[str, Any], secret: str | None = None) -> Any:
    raw = json.dumps(document).encode()
    key = (secret or SECRETS[ChannelName.WHATSAPP]["app_secret"]).encode()
    signature = "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest()
    return api.call("POST", f"/v1/webhooks/whatsapp/{binding_id}", raw=raw,
                    headers={"X-Hub-Signature-256": signature})


def whatsapp_text(wamid: str = "wamid.A1", text: str = "Bonjour") -> dict[str, Any]:
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1055"},
             "contacts": [{"wa_id": "33612345678", "profile": {"name": "Ana"}}],
             "messages": [{"from": "33612345678", "id": wamid, "timestamp": "1700000000", "type": "text",
                           "text": {"body": text}}]}
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [
        {"field": "messages", "value": value}]}]}


# --- Twilio --------------------------------------------------------------------------------------------

def test_a_signed_twilio_sms_enqueues_one_turn_and_answers_empty_twiml(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.TWILIO)
    response = post_twilio(api, binding_id, sms())
    assert response.status_code == 200
    assert "<Response>" in response.body.decode()
    [turn] = queued(aws)
    assert turn["kind"] == "turn" and turn["channel"] == "twilio" and turn["binding_id"] == binding_id
    assert turn["user_id"] == "+15550001" and turn["text"] == "Where is my order?"
    assert turn["reply_to"] == {"to": "+15550001", "from": "+15559999"}
    # The worker opens the session: the webhook answers without waiting for it.
    assert turn["agent_id"] == "support" and turn["session_id"] is None
    assert turn["message_id"].startswith("msg_")
    pending = api.services.inbox.pending(_key_of(turn))
    assert [entry.message_id for entry in pending] == [turn["message_id"]]


def _key_of(turn: dict[str, Any]) -> SessionKey:
    return SessionKey(tenant_id=turn["tenant_id"], agent_id=turn["agent_id"], channel=turn["channel"],
                      user_id=turn["user_id"])


def test_a_tampered_twilio_request_is_403_and_nothing_is_stored(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.TWILIO)
    url = f"https://{HOST}/v1/webhooks/twilio/{binding_id}"
    signature = RequestValidator(SECRETS[ChannelName.TWILIO]["auth_token"]).compute_signature(url, sms())
    response = post_twilio(api, binding_id, sms(body="Refund me 1000 dollars"), signature=signature)
    assert response.status_code == 403
    assert response.json_body["error"]["code"] == "invalid_signature"
    assert queued(aws) == []
    assert dedupe_markers(aws) == []


def test_a_message_redelivered_three_times_is_one_turn(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.TWILIO)
    for _ in range(3):
        assert post_twilio(api, binding_id, sms("SM-same")).status_code == 200
    assert len(queued(aws)) == 1


def test_two_messages_of_one_user_share_a_fifo_group_and_other_users_do_not(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.TWILIO)
    post_twilio(api, binding_id, sms("SM1"))
    post_twilio(api, binding_id, sms("SM2", "and also"))
    post_twilio(api, binding_id, {**sms("SM3"), "From": "+15550002"})
    turns = queued(aws)
    groups = {turn["message_id"]: turn["_group"] for turn in turns}
    by_user = {(turn["user_id"], turn["_group"]) for turn in turns}
    assert len(groups) == 3 and len(by_user) == 2 and len(set(groups.values())) == 2


def test_a_twilio_status_callback_is_answered_and_enqueues_nothing(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.TWILIO)
    callback = {"MessageSid": "SM9", "MessageStatus": "delivered", "To": "+15550001", "From": "+15559999"}
    assert post_twilio(api, binding_id, callback).status_code == 200
    assert queued(aws) == []


def test_an_unknown_binding_or_a_binding_of_another_channel_is_404(api: Api) -> None:
    binding_id = bound(api, ChannelName.TWILIO)
    assert post_twilio(api, "bnd_unknown", sms()).status_code == 404
    assert post_slack(api, binding_id, slack_message()).status_code == 404


# --- WhatsApp -----------------------------------------------------------------------------------------

def test_the_whatsapp_verification_handshake_echoes_the_challenge(api: Api) -> None:
    binding_id = bound(api, ChannelName.WHATSAPP)
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    response = api.call("GET", f"/v1/webhooks/whatsapp/{binding_id}?{urlencode(query)}")
    assert response.status_code == 200
    assert response.body.decode() == "1158201444"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_the_whatsapp_handshake_with_a_wrong_verify_token_is_403(api: Api) -> None:
    binding_id = bound(api, ChannelName.WHATSAPP)
    query = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    assert api.call("GET", f"/v1/webhooks/whatsapp/{binding_id}?{urlencode(query)}").status_code == 403


def test_a_signed_whatsapp_text_enqueues_a_turn_for_the_wa_id(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.WHATSAPP)
    assert post_whatsapp(api, binding_id, whatsapp_text()).status_code == 200
    [turn] = queued(aws)
    assert turn["user_id"] == "33612345678" and turn["text"] == "Bonjour"
    assert turn["reply_to"] == {"to": "33612345678", "phone_number_id": "1055"}
    assert turn["received_at"] == 1700000000.0


def test_a_whatsapp_body_signed_with_another_secret_is_403_and_nothing_is_stored(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.WHATSAPP)
    assert post_whatsapp(api, binding_id, whatsapp_text(), secret="not-the-app-secret").status_code == 403
    assert queued(aws) == [] and dedupe_markers(aws) == []


def test_whatsapp_delivery_statuses_need_no_turn(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.WHATSAPP)
    statuses = {"entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "1055"},
        "statuses": [{"id": "wamid.OUT", "status": "read", "recipient_id": "336"}]}}]}]}
    assert post_whatsapp(api, binding_id, statuses).status_code == 200
    assert queued(aws) == []


# --- Slack ---------------------------------------------------------------------------------------------

def test_slack_url_verification_answers_the_challenge(api: Api) -> None:
    binding_id = bound(api, ChannelName.SLACK)
    response = post_slack(api, binding_id, {"type": "url_verification", "challenge": "3eZbrw1aBm2"})
    assert response.status_code == 200
    assert response.body.decode() == "3eZbrw1aBm2"


def test_a_slack_message_enqueues_a_turn_without_the_leading_mention(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.SLACK)
    assert post_slack(api, binding_id, slack_message(thread_ts="1699999999.000001")).status_code == 200
    [turn] = queued(aws)
    assert turn["text"] == "hello there" and turn["user_id"] == "U123"
    assert turn["reply_to"] == {"channel": "D42", "thread_ts": "1699999999.000001"}


def test_slack_retries_of_an_event_are_one_turn(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.SLACK)
    post_slack(api, binding_id, slack_message())
    for retry in ("1", "2"):
        response = post_slack(api, binding_id, slack_message(), headers={"X-Slack-Retry-Num": retry,
                                                                        "X-Slack-Retry-Reason": "http_timeout"})
        assert response.status_code == 200
    assert len(queued(aws)) == 1


def test_bot_messages_are_ignored_so_the_agent_never_answers_itself(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.SLACK)
    post_slack(api, binding_id, slack_message(bot_id="B1", ts="1.1"))
    post_slack(api, binding_id, slack_message(subtype="message_changed", ts="1.2"))
    assert queued(aws) == []


def test_a_slack_request_older_than_five_minutes_is_403(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.SLACK)
    response = post_slack(api, binding_id, slack_message(), timestamp=int(time.time()) - 600)
    assert response.status_code == 403
    assert queued(aws) == [] and dedupe_markers(aws) == []


def test_a_slack_request_signed_with_another_secret_is_403(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.SLACK)
    assert post_slack(api, binding_id, slack_message(), secret="someone-else").status_code == 403
    assert queued(aws) == []


def test_a_get_on_a_slack_webhook_is_405(api: Api) -> None:
    binding_id = bound(api, ChannelName.SLACK)
    assert api.call("GET", f"/v1/webhooks/slack/{binding_id}").status_code == 405


def test_a_webhook_body_over_the_limit_is_413(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    binding_id = bound(api, ChannelName.SLACK)
    monkeypatch.setenv("RUCHE_MAX_BODY_BYTES", "100")
    reset_services()
    response = post_slack(api, binding_id, slack_message(text="x" * 200))
    assert response.status_code == 413
    assert response.json_body["error"]["code"] == "payload_too_large"


# --- webchat -------------------------------------------------------------------------------------------

def post_webchat(api: Api, binding_id: str, body: dict[str, Any], token: str = "wc-public-token") -> Any:
    return api.call("POST", f"/v1/webhooks/webchat/{binding_id}", body=body,
                    headers={"Authorization": f"Bearer {token}"})


def poll(api: Api, binding_id: str, visitor_token: str, token: str = "wc-public-token",
         after: str | None = None) -> Any:
    query = f"?after={after}" if after else ""
    return api.call("GET", f"/v1/webhooks/webchat/{binding_id}/messages{query}",
                    headers={"Authorization": f"Bearer {token}", "X-Visitor-Token": visitor_token})


def test_a_first_webchat_message_gets_a_visitor_token_and_is_enqueued(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.WEBCHAT)
    response = post_webchat(api, binding_id, {"message": "hi"})
    assert response.status_code == 202
    accepted = response.json_body
    assert accepted["visitor_token"].startswith("vt_") and accepted["session_id"].startswith("ses_")
    [turn] = queued(aws)
    assert turn["message_id"] == accepted["message_id"] and turn["session_id"] == accepted["session_id"]
    assert turn["user_id"] == accepted["visitor_token"][3:].split(".")[0]


def test_a_retried_client_message_id_is_the_same_message_and_no_second_turn(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.WEBCHAT)
    first = post_webchat(api, binding_id, {"message": "hi", "client_message_id": "c1"}).json_body
    again = post_webchat(api, binding_id, {"message": "hi", "client_message_id": "c1",
                                           "visitor_token": first["visitor_token"]}).json_body
    assert again == first
    assert len(queued(aws)) == 1


def test_a_forged_visitor_token_is_403(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.WEBCHAT)
    forged = "vt_" + "0" * 32 + "." + "f" * 64
    assert post_webchat(api, binding_id, {"message": "hi", "visitor_token": forged}).status_code == 403
    assert poll(api, binding_id, forged).status_code == 403
    assert queued(aws) == []


def test_a_wrong_binding_token_is_401(api: Api, aws: Aws) -> None:
    binding_id = bound(api, ChannelName.WEBCHAT)
    assert post_webchat(api, binding_id, {"message": "hi"}, token="guess").status_code == 401
    assert queued(aws) == []


def test_a_visitor_reads_only_its_own_transcript(api: Api) -> None:
    binding_id = bound(api, ChannelName.WEBCHAT)
    alice = post_webchat(api, binding_id, {"message": "I am Alice"}).json_body
    bob = post_webchat(api, binding_id, {"message": "I am Bob"}).json_body
    _reply_as_the_worker_would(api, alice["session_id"], "I am Alice", "Hello Alice")
    alice_view = poll(api, binding_id, alice["visitor_token"])
    assert alice_view.status_code == 200
    messages = alice_view.json_body["messages"]
    assert [(m["role"], m["text"]) for m in messages] == [("user", "I am Alice"), ("agent", "Hello Alice")]
    assert set(messages[0]) == {"message_id", "role", "text", "created_at"}
    assert poll(api, binding_id, bob["visitor_token"]).json_body == {"messages": []}
    after_first = poll(api, binding_id, alice["visitor_token"], after=messages[0]["message_id"]).json_body
    assert [m["text"] for m in after_first["messages"]] == ["Hello Alice"]


def _reply_as_the_worker_would(api: Api, session_id: str, message: str, reply: str) -> None:
    """Commit a turn's transcript the way the queue worker does (the worker is tested on its own)."""
    svc = api.services
    session = _session(api, session_id)
    record = TurnRecord(turn_id="turn_1", session_id=session_id, tenant_id=session.key.tenant_id,
                        agent_id=session.key.agent_id, agent_version=1, interlocutor_id=session.interlocutor_id,
                        turn_number=1, channel="webchat", message=message, reply=reply, outcome=Outcome(),
                        created_at="now")
    transcript = [TranscriptMessage("msg_u1", "user", message, "2024-01-01T00:00:00Z"),
                  TranscriptMessage("msg_a1", "agent", reply, "2024-01-01T00:00:01Z")]
    svc.sessions.commit(TurnCommit(session=session.model_copy(update={"version": session.version + 1}),
                                   expected_version=session.version, record=record, transcript=transcript,
                                   now_s=time.time()))


def _session(api: Api, session_id: str) -> Any:
    items = api.services.dynamodb.scan(TableName=api.services.settings.table)["Items"]
    tenant_id = next(item["pk"]["S"].split("#")[1] for item in items
                     if item["pk"]["S"].endswith(f"#S#{session_id}"))
    return api.services.sessions.get(tenant_id, session_id)


def test_the_webchat_page_embeds_the_binding_and_uses_the_two_calls(api: Api) -> None:
    binding_id = bound(api, ChannelName.WEBCHAT)
    response = api.call("GET", f"/v1/webhooks/webchat/{binding_id}/page")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert binding_id in html and "wc-public-token" in html and "X-Visitor-Token" in html
    assert api.call("GET", "/v1/webhooks/webchat/bnd_nope/page").status_code == 404


def test_a_message_that_could_not_be_queued_is_taken_when_the_provider_retries(
        api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    binding_id = bound(api, ChannelName.TWILIO)
    # GIVEN a queue that cannot be reached for the first delivery
    monkeypatch.setenv("RUCHE_TURN_QUEUE_URL", aws.queue_url.replace("turns.fifo", "missing.fifo"))
    reset_services()
    assert post_twilio(api, binding_id, sms(sid="SM-retry")).status_code == 503
    # WHEN the provider retries once the queue is back
    monkeypatch.setenv("RUCHE_TURN_QUEUE_URL", aws.queue_url)
    reset_services()
    assert post_twilio(api, binding_id, sms(sid="SM-retry")).status_code == 200
    # THEN the message was taken once, not dropped as a duplicate
    assert [turn["provider_message_id"] for turn in queued(aws)] == ["SM-retry"]
