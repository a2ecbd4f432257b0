"""A hostile visitor floods public endpoints: limits per binding and per visitor, 429 + Retry-After.

A refused post writes nothing: no session, no queued turn, no dedupe marker. Every post also
counts against its tenant's own requests_per_minute, shared with the tenant's API calls.
"""

from __future__ import annotations

from chalicelib.domain.channel import ChannelName
from tests.api.harness import Api, error_of
from tests.conftest import Aws
from tests.runtime.test_ingest import dedupe_markers, post_slack, post_twilio, post_webchat, queued, slack_message, sms
from tests.security.public_harness import bound, minute, public_api, sessions_of

__all__ = ["minute", "public_api"]


def statuses(responses: list[object]) -> list[int]:
    return [response.status_code for response in responses]  # type: ignore[attr-defined]


def test_a_burst_of_60_anonymous_webchat_posts_is_cut_at_the_new_visitor_limit(
        public_api: Api, aws: Aws, minute: list[float]) -> None:
    tenant_id, _, binding_id = bound(public_api, ChannelName.WEBCHAT)  # platform defaults: 30 new visitors/min
    answers = [post_webchat(public_api, binding_id, {"message": f"hello {n}"}) for n in range(60)]
    assert statuses(answers) == [202] * 30 + [429] * 30
    refused = answers[-1]
    assert error_of(refused)["code"] == "rate_limited" and error_of(refused)["details"]["scope"] == "new_visitors"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The refused posts opened no session and queued no turn.
    assert len(sessions_of(aws, tenant_id)) == 30
    assert len(queued(aws)) == 30


def test_one_visitor_is_cut_at_its_limit_while_other_visitors_go_on(
        public_api: Api, aws: Aws, minute: list[float]) -> None:
    _, _, binding_id = bound(public_api, ChannelName.WEBCHAT, {"rate_limit": {"visitor_per_minute": 3}})
    first = post_webchat(public_api, binding_id, {"message": "hi"})  # mints the visitor (new_visitors)
    token = first.json_body["visitor_token"]
    answers = [post_webchat(public_api, binding_id, {"message": f"again {n}", "visitor_token": token})
               for n in range(5)]
    assert statuses(answers) == [202, 202, 202, 429, 429]
    assert error_of(answers[-1])["details"]["scope"] == "visitor"
    assert post_webchat(public_api, binding_id, {"message": "someone else"}).status_code == 202
    assert len(queued(aws)) == 1 + 3 + 1
    minute[0] += int(answers[-1].headers["Retry-After"])  # the next window
    assert post_webchat(public_api, binding_id, {"message": "later", "visitor_token": token}).status_code == 202


def test_a_binding_is_cut_at_its_limit_whoever_posts(public_api: Api, aws: Aws, minute: list[float]) -> None:
    tenant_id, _, binding_id = bound(public_api, ChannelName.WEBCHAT, {"rate_limit": {"binding_per_minute": 4}})
    answers = [post_webchat(public_api, binding_id, {"message": f"m{n}"}) for n in range(6)]
    assert statuses(answers) == [202] * 4 + [429] * 2
    assert error_of(answers[-1])["details"]["scope"] == "binding"
    assert len(sessions_of(aws, tenant_id)) == 4


def test_a_flood_of_signed_twilio_messages_from_one_number_is_cut_at_the_visitor_limit(
        public_api: Api, aws: Aws, minute: list[float]) -> None:
    _, _, binding_id = bound(public_api, ChannelName.TWILIO)  # platform default: 20 per visitor per minute
    answers = [post_twilio(public_api, binding_id, sms(sid=f"SM{n:04d}", body=f"spam {n}")) for n in range(25)]
    assert statuses(answers) == [200] * 20 + [429] * 5
    assert "Retry-After" in answers[-1].headers and error_of(answers[-1])["code"] == "rate_limited"
    assert len(queued(aws)) == 20
    assert len([item for item in dedupe_markers(aws) if "#DEDUPE#" in item["pk"]["S"]]) == 20


def test_a_flood_of_signed_slack_events_is_cut_at_the_binding_limit(
        public_api: Api, aws: Aws, minute: list[float]) -> None:
    _, _, binding_id = bound(public_api, ChannelName.SLACK, {"rate_limit": {"binding_per_minute": 5}})
    answers = [post_slack(public_api, binding_id, {**slack_message(user=f"U{n}", ts=f"1700000000.{n:06d}"),
                                                   "event_id": f"Ev{n}"}) for n in range(8)]
    assert statuses(answers) == [200] * 5 + [429] * 3
    assert error_of(answers[-1])["details"]["scope"] == "binding"
    assert len(queued(aws)) == 5


def test_public_posts_count_against_the_tenants_own_limit_with_its_api_calls(
        public_api: Api, aws: Aws, minute: list[float]) -> None:
    _, key, binding_id = bound(public_api, ChannelName.WEBCHAT, {"rate_limit": {"requests_per_minute": 10}})
    # bound() made 4 tenant requests (config, agent, binding... and the config PUT itself counts).
    answers = [post_webchat(public_api, binding_id, {"message": f"m{n}"}) for n in range(8)]
    accepted = statuses(answers).count(202)
    assert accepted == 10 - 3 and statuses(answers)[accepted:] == [429] * (8 - accepted)
    assert error_of(answers[-1])["details"]["scope"] == "tenant"
    assert public_api.call("GET", "/v1/agents", key).status_code == 429  # the same counter
    assert len(queued(aws)) == accepted


def test_an_unsigned_flood_is_refused_without_using_the_bindings_budget(
        public_api: Api, aws: Aws, minute: list[float]) -> None:
    _, _, binding_id = bound(public_api, ChannelName.TWILIO, {"rate_limit": {"binding_per_minute": 2}})
    forged = [post_twilio(public_api, binding_id, sms(sid=f"SX{n}"), signature="forged") for n in range(5)]
    assert statuses(forged) == [403] * 5
    assert post_twilio(public_api, binding_id, sms(sid="SM-real")).status_code == 200
    assert len(queued(aws)) == 1
