"""Formatting a reply for its channel: markdown stripped for plain text, length cut cleanly."""

from __future__ import annotations

from chalicelib.domain.config import ResponseConfig
from chalicelib.focal.formatting import ELLIPSIS, format_reply

PLAIN = ResponseConfig(format="plain")


def test_plain_text_loses_emphasis_headings_and_code_fences() -> None:
    text = (
        "# Your order\n\nIt is **shipped** and *on time*, __really__ ~~late~~.\n"
        '```json\n{"a": 1}\n```\nUse `track`.'
    )

    assert (
        format_reply(text, PLAIN)
        == 'Your order\n\nIt is shipped and on time, really late.\n{"a": 1}\nUse track.'
    )


def test_plain_text_keeps_links_as_text_and_url() -> None:
    text = "See [our policy](https://x.example/p) or <https://y.example> and [https://z.example](https://z.example)."

    assert format_reply(text, PLAIN) == (
        "See our policy (https://x.example/p) or <https://y.example> and https://z.example."
    )


def test_plain_text_bullets_become_dashes_and_quotes_and_rules_go() -> None:
    text = "Options:\n* first\n+ second\n  - nested\n> quoted\n---\n1. numbered"

    assert format_reply(text, PLAIN) == "Options:\n- first\n- second\n- nested\nquoted\n\n1. numbered"


def test_underscores_inside_words_are_not_emphasis() -> None:
    assert format_reply("Your order_id and snake_case_name stay, _this_ goes.", PLAIN) == (
        "Your order_id and snake_case_name stay, this goes."
    )


def test_markdown_format_keeps_the_markup_and_normalises_whitespace() -> None:
    text = "  **Hi**   there\t!\r\n\n\n\n- item   \n"

    assert format_reply(text, ResponseConfig(format="markdown")) == "**Hi** there !\n\n- item"


def test_a_long_reply_is_cut_at_a_sentence_boundary_with_an_ellipsis() -> None:
    text = "This is the first sentence of the reply. " + "And here comes a much longer second sentence " * 3

    cut = format_reply(text, ResponseConfig(max_length=60))

    assert cut == "This is the first sentence of the reply" + ELLIPSIS
    assert len(cut) <= 60


def test_without_a_sentence_end_in_reach_the_cut_is_at_a_word_boundary() -> None:
    text = "word " * 30

    cut = format_reply(text, ResponseConfig(max_length=23))

    assert cut == "word word word word" + ELLIPSIS
    assert len(cut) <= 23


def test_a_single_long_word_is_cut_hard() -> None:
    cut = format_reply("x" * 50, ResponseConfig(max_length=20))

    assert cut == "x" * 19 + ELLIPSIS


def test_a_reply_within_the_limit_is_unchanged() -> None:
    assert format_reply("Short and sweet.", ResponseConfig(max_length=20)) == "Short and sweet."
