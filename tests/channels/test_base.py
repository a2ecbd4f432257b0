"""Splitting a long reply into messages, and the shared delivery helpers."""

from __future__ import annotations

import pytest

from chalicelib.channels import adapter_for
from chalicelib.channels.base import api_url, json_body, message_limit, split_message
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.errors import InvalidJson, NotFound
from tests.channels.factories import a_binding


def test_a_short_reply_is_one_message() -> None:
    assert split_message("  Hello there.  ", 160) == ["Hello there."]


def test_empty_text_gives_no_message() -> None:
    assert split_message("   ", 160) == []


def test_a_long_reply_is_split_at_paragraph_breaks_first() -> None:
    text = "First paragraph is here and long enough.\n\nSecond paragraph follows it."
    assert split_message(text, 50) == ["First paragraph is here and long enough.", "Second paragraph follows it."]


def test_without_paragraphs_the_split_falls_at_a_sentence_end() -> None:
    text = "We open at nine tomorrow. Bring your receipt! The refund takes five days."
    parts = split_message(text, 50)
    assert parts == ["We open at nine tomorrow. Bring your receipt!", "The refund takes five days."]
    assert all(len(part) <= 50 for part in parts)


def test_without_sentence_ends_the_split_falls_between_words() -> None:
    text = " ".join(["word"] * 30)
    parts = split_message(text, 42)
    assert all(len(part) <= 42 and not part.startswith(" ") for part in parts)
    assert " ".join(parts).split() == text.split()


def test_a_word_longer_than_the_limit_is_cut_hard_and_nothing_is_lost() -> None:
    parts = split_message("x" * 25, 10)
    assert parts == ["x" * 10, "x" * 10, "x" * 5]


def test_a_non_positive_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        split_message("text", 0)


def test_api_base_url_replaces_scheme_and_host_but_keeps_the_providers_path() -> None:
    binding = a_binding(ChannelName.SLACK, api_base_url="http://127.0.0.1:9999/ignored/prefix")
    assert api_url(binding, "https://slack.com", "/api/chat.postMessage") == \
        "http://127.0.0.1:9999/api/chat.postMessage"
    assert api_url(a_binding(ChannelName.SLACK), "https://slack.com", "/api/x") == "https://slack.com/api/x"


def test_a_binding_may_lower_the_message_limit_but_not_raise_it() -> None:
    assert message_limit(a_binding(ChannelName.TWILIO, max_message_chars=160), 1600) == 160
    assert message_limit(a_binding(ChannelName.TWILIO, max_message_chars=99999), 1600) == 1600
    assert message_limit(a_binding(ChannelName.TWILIO), 1600) == 1600


def test_a_webhook_body_that_is_not_json_is_invalid_json() -> None:
    with pytest.raises(InvalidJson):
        json_body(b"{not json")


def test_every_bound_channel_has_a_sender_and_the_api_channel_has_none() -> None:
    assert {adapter_for(name).name for name in ("twilio", "whatsapp", "slack", "webchat")} == {
        "twilio", "whatsapp", "slack", "webchat"}
    assert adapter_for(ChannelName.SLACK).name == "slack"
    with pytest.raises(NotFound):
        adapter_for("api")
