"""Format a reply for the turn's channel: markdown or plain text, within the length limit.

Runs before enforcement, so the text that is checked is the text that is sent. Pure.
"""

from __future__ import annotations

import re

from chalicelib.domain.config import ResponseConfig

ELLIPSIS = "…"

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.MULTILINE)
_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*>[ \t]?", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[*+-][ \t]+", re.MULTILINE)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.DOTALL)
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


def format_reply(text: str, response: ResponseConfig) -> str:
    """The reply as it will be sent: markdown stripped for `plain`, whitespace normalised, and cut
    to `max_length` characters at a sentence or word boundary, ending with an ellipsis."""
    if response.format == "plain":
        text = strip_markdown(text)
    return cut(normalise_whitespace(text), response.max_length)


def strip_markdown(text: str) -> str:
    """Plain text from markdown: emphasis markers and headings go, links read "text (url)",
    bullets become "- ", code fences leave their content."""
    text = _FENCE.sub(lambda m: m.group(2).rstrip("\n"), text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _IMAGE_OR_LINK.sub(_link, text)
    text = _HEADING.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub(r"\1- ", text)
    text = _BOLD.sub(r"\2", text)
    text = _STRIKE.sub(r"\1", text)
    text = _ITALIC_STAR.sub(r"\1", text)
    return _ITALIC_UNDERSCORE.sub(r"\1", text)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2)
    if not label or label == url:
        return url
    return f"{label} ({url})"


def normalise_whitespace(text: str) -> str:
    """One space between words, no trailing spaces, at most one blank line between paragraphs."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def cut(text: str, max_length: int) -> str:
    """At most max_length characters. A cut prefers the last sentence end in the second half of
    the allowance, then the last word boundary, and always ends with an ellipsis."""
    if len(text) <= max_length:
        return text
    room = max_length - len(ELLIPSIS)
    head = text[: room + 1]  # one more character tells whether a word ends exactly at the limit
    ends = [m.end() for m in _SENTENCE_END.finditer(head) if m.end() <= room]
    if ends and ends[-1] >= room // 2:
        kept = head[: ends[-1]]
    else:
        space = head.rfind(" ")
        kept = head[:space] if space >= room // 2 else head[:room]
    return kept.rstrip().rstrip(".,;:") + ELLIPSIS
