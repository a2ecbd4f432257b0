"""Extract field values from a message by field type, without a model (the offline understanding).

Every field type has a recogniser (email, phone, numbers and money, dates, enum values and their
synonyms, tenant patterns); each finds candidate spans that are whole tokens only, so a 5-digit
pattern never takes the digits inside "#W1234567" and a number never the tail of "NW-204513".
A span belongs to one field. When several fields could take the same span, the field the agent
just asked for wins, then the one whose name is cued by nearby words ("ship to 94107" is the
shipping zip), then one with no value yet, then the more specific shape, then declared order; a field
takes the first of its own candidates that is left.
Pure: no I/O, no clock (relative dates are read against the `today` the caller passes).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import regex

from chalicelib.domain import patterns
from chalicelib.domain.interlocutor import FieldDefinition, FieldType, ValueSource

YES = re.compile(r"\b(yes|yeah|yep|yup|sure|ok|okay|confirm(ed)?|correct|absolutely|agreed?|"
                 r"go ahead|please do|do it|that'?s right)\b", re.IGNORECASE)
NO = re.compile(r"\b(no|nope|not|don'?t|do not|never|cancel|stop|wrong)\b", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s<>()\[\],;:\"']+@[^@\s<>()\[\],;:\"']+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d ().-]{5,20}\d")
_MONEY = re.compile(r"(?:[$€£]\s?(?P<a>\d[\d,]*(?:\.\d+)?))|(?:(?P<b>\d[\d,]*(?:\.\d+)?)\s?"
                    r"(?:dollars?|usd|eur(?:os?)?|gbp|pounds?|[€£$]))", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
_MONTH = r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
         r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(?P<year>\d{4}))?"
_DAY_MONTH = re.compile(rf"{_DAY}\s+(?:of\s+)?{_MONTH}{_YEAR}", re.IGNORECASE)
_MONTH_DAY = re.compile(rf"{_MONTH}\s+{_DAY}{_YEAR}", re.IGNORECASE)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RELATIVE = re.compile(r"(?:(?P<next>next|this|on)\s+)?(?P<word>today|tomorrow|day after tomorrow|"
                       + "|".join(_WEEKDAYS) + ")", re.IGNORECASE)
# Characters that glue a token together: a match touching one is part of a longer token.
_JOINERS = frozenset("-_#@/&+")
_NAME_SPLIT = re.compile(r"[_.\-\s]+")
_WORD = re.compile(r"[^\W_]+")
_CUE_WINDOW_BEFORE, _CUE_WINDOW_AFTER = 5, 1  # words around a span that may name its field
# Shapes, most specific first: breaks ties between fields of different types on one span.
_SPECIFICITY = {FieldType.EMAIL: 0, FieldType.DATE: 1, FieldType.STRING: 2, FieldType.PHONE: 3,
                FieldType.ENUM: 4, FieldType.LIST: 4, FieldType.NUMBER: 5, FieldType.INTEGER: 5}
_FREE_TEXT_MAX_WORDS = 6
_FREE_TEXT_LEAD = re.compile(r"^(?:my\s+\w+\s+is|it'?s|it\s+is|i'?m|i\s+am|this\s+is|call\s+me)\s+",
                             re.IGNORECASE)

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Candidate:
    field: FieldDefinition
    span: Span
    value: Any


def extract_values(message: str, fields: Sequence[FieldDefinition], *, asked: Collection[str] = (),
                   known: Collection[str] = (), today: date | None = None) -> dict[str, Any]:
    """Field values found in the message: field name -> value as stated (coerced later).

    `asked`: the fields the agent just asked for (they win contested spans; a bare "yes" answers
    an asked boolean); `known`: fields that already have a value (they yield a contested span to
    one that has none); `today`: for "tomorrow", "Friday", "March 3". Only fields users may set.
    """
    settable = [field for field in fields if field.accepts_source(ValueSource.USER)]
    numeric = [field for field in settable if field.type in (FieldType.NUMBER, FieldType.INTEGER)]
    words = [(match.start(), match.end(), match.group(0).lower()) for match in _WORD.finditer(message)]
    ranked: list[tuple[tuple[int, int, int, int, int, int, int], Candidate]] = []
    for order, field in enumerate(settable):
        guessing_numbers = field in numeric and len(numeric) > 1 and field.name not in asked
        for candidate in _candidates(field, message, today):
            cue = _cue(field, candidate.span, words)
            if guessing_numbers and not cue:
                continue  # several number fields and nothing says which: no guess
            key = (0 if field.name in asked else 1, -cue, 0 if field.name not in known else 1,
                   _SPECIFICITY.get(field.type, 9), order, candidate.span[0],
                   candidate.span[0] - candidate.span[1])  # at one place, the longest phrase: "unlimited plus"
            ranked.append((key, candidate))
    ranked.sort(key=lambda item: item[0])
    claimed: list[Span] = []
    found: dict[str, Any] = {}
    items: dict[str, list[tuple[int, Any]]] = {}  # list fields: (position, value)
    for _, candidate in ranked:
        field, span = candidate.field, candidate.span
        if any(span[0] < end and start < span[1] for start, end in claimed):
            continue
        if field.type is FieldType.LIST:
            items.setdefault(field.name, []).append((span[0], candidate.value))
        elif field.name in found:
            continue
        else:
            found[field.name] = candidate.value
        claimed.append(span)
    for name, positioned in items.items():  # in the order the message mentions them, each once
        found[name] = list(dict.fromkeys(value for _, value in sorted(positioned, key=lambda item: item[0])))
    for field in settable:
        value = _unclaimed_value(field, message, asked=asked, found=found)
        if value is not None:
            found[field.name] = value
    return found


def _candidates(field: FieldDefinition, message: str, today: date | None) -> Iterator[Candidate]:
    kind = field.type
    if field.values and kind in (FieldType.ENUM, FieldType.STRING, FieldType.LIST):
        yield from _mentioned_values(field, message)
    elif kind is FieldType.EMAIL:
        yield from _accepted(field, _whole(_EMAIL.finditer(message), message))
    elif kind is FieldType.PHONE:
        yield from _accepted(field, _whole(_PHONE.finditer(message), message))
    elif kind is FieldType.DATE:
        yield from _dates(field, message, today)
    elif kind in (FieldType.NUMBER, FieldType.INTEGER):
        yield from _numbers(field, message)
    elif kind is FieldType.STRING and field.pattern is not None:
        try:  # a tenant's pattern on the user's text: checked, timed, and on the turn's regex budget
            inside = patterns.compile_tenant_pattern(_unanchored(field.pattern))
            found = list(_whole(inside.finditer(message), message))
        except (TimeoutError, patterns.PatternError):  # too slow or too big: extracts nothing
            return
        yield from _accepted(field, iter(found))


def _whole(matches: Iterator[re.Match[str] | regex.Match[str]], message: str) -> Iterator[tuple[Span, str]]:
    """Matches that are whole tokens, with trailing sentence punctuation left out."""
    for match in matches:
        text = match.group(0).rstrip(".,;:!?")
        start, end = match.start(), match.start() + len(text)
        if text and is_whole_token(message, start, end):
            yield (start, end), text


def is_whole_token(message: str, start: int, end: int) -> bool:
    """True when [start, end) neither starts nor ends inside a longer token of the message."""
    before = message[start - 1] if start > 0 else " "
    after = message[end] if end < len(message) else " "
    if before.isalnum() or before in _JOINERS or (before == "." and start > 1 and message[start - 2].isalnum()):
        return False
    if after.isalnum() or after in _JOINERS:
        return False
    # A dot or comma followed by a digit or letter continues the token ("1.5", "a.b").
    return not (after in ".," and end + 1 < len(message) and message[end + 1].isalnum())


def _accepted(field: FieldDefinition, spans: Iterator[tuple[Span, str]]) -> Iterator[Candidate]:
    for span, text in spans:
        try:
            field.coerce(text)
        except ValueError:
            continue
        yield Candidate(field, span, text)


def _numbers(field: FieldDefinition, message: str) -> Iterator[Candidate]:
    money_spans: list[Span] = []
    if field.type is FieldType.NUMBER:
        for match in _MONEY.finditer(message):
            amount = (match.group("a") or match.group("b") or "").replace(",", "")
            span = (match.start(), match.end())
            if is_whole_token(message, *span):
                money_spans.append(span)
                yield from _accepted(field, iter([(span, amount)]))
    for span, text in _whole(_NUMBER.finditer(message), message):
        if not any(start <= span[0] and span[1] <= end for start, end in money_spans):
            yield from _accepted(field, iter([(span, text.replace(",", ""))]))


def _dates(field: FieldDefinition, message: str, today: date | None) -> Iterator[Candidate]:
    for span, text in _whole(_ISO_DATE.finditer(message), message):
        yield from _accepted(field, iter([(span, text)]))
    if today is None:
        return  # a date without a year, or a relative one, needs to know what day it is
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        for match in pattern.finditer(message):
            found = _calendar_date(match, today)
            if found is not None and is_whole_token(message, match.start(), match.end()):
                yield from _accepted(field, iter([((match.start(), match.end()), found.isoformat())]))
    for match in _RELATIVE.finditer(message):
        if is_whole_token(message, match.start(), match.end()):
            found = _relative_date(match.group("word").lower(), today)
            yield from _accepted(field, iter([((match.start(), match.end()), found.isoformat())]))


def _calendar_date(match: re.Match[str], today: date) -> date | None:
    month = next(index for index, name in enumerate(_MONTHS, start=1)
                 if name.startswith(match.group("month").lower()[:3]))
    year = int(match.group("year")) if match.group("year") else today.year
    try:
        found = date(year, month, int(match.group("day")))
    except ValueError:
        return None
    if not match.group("year") and found < today:  # "March 3" said in December: next year's
        try:
            found = found.replace(year=year + 1)
        except ValueError:
            return None
    return found


def _relative_date(word: str, today: date) -> date:
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    if word == "day after tomorrow":
        return today + timedelta(days=2)
    ahead = (_WEEKDAYS.index(word) - today.weekday()) % 7
    return today + timedelta(days=ahead or 7)  # "Friday" said on a Friday: the next one


def _mentioned_values(field: FieldDefinition, message: str) -> Iterator[Candidate]:
    for value in field.values or ():
        for phrase in (value, *field.synonyms.get(value, ())):
            for match in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", message, re.IGNORECASE):
                yield Candidate(field, (match.start(), match.end()), value)


def _unclaimed_value(field: FieldDefinition, message: str, *, asked: Collection[str],
                     found: Mapping[str, Any]) -> Any:
    """Values with no span: yes/no for a boolean, a short answer to an asked free-text field."""
    if field.name in found:
        return None
    if field.type is FieldType.BOOLEAN:
        if not (field.name in asked or _mentions_name(field, message)):
            return None
        if YES.search(message) and not NO.search(message):
            return True
        return False if NO.search(message) and not YES.search(message) else None
    free_text = field.type is FieldType.STRING and field.pattern is None and not field.values
    if free_text and field.name in asked and not found:
        # "Ana Lopez" in answer to "What name should I put the booking under?": the answer is the value.
        text = _FREE_TEXT_LEAD.sub("", message.strip()).strip(" .!")
        if text and len(text.split()) <= _FREE_TEXT_MAX_WORDS and not YES.fullmatch(text):
            return text
    return None


def _name_words(field: FieldDefinition) -> list[str]:
    return [word for word in _NAME_SPLIT.split(field.name.lower()) if len(word) >= 3]


def _mentions_name(field: FieldDefinition, message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in _name_words(field))


def _cue(field: FieldDefinition, span: Span, words: Sequence[tuple[int, int, str]]) -> int:
    """How strongly nearby words name the field: each name word found counts, the closer the more.

    A word right before the span scores the window's size, one further away one less; right after
    the span ("4 guests") scores 1. So in "4 guests, budget 300" the 300 goes to the budget.
    """
    before = [word for start, _, word in words if start < span[0]][-_CUE_WINDOW_BEFORE:]
    after = [word for start, _, word in words if start >= span[1]][:_CUE_WINDOW_AFTER]
    total = 0
    for name in _name_words(field):
        near = [_CUE_WINDOW_BEFORE - distance for distance, word in enumerate(reversed(before))
                if _same_word(name, word)]
        near += [_CUE_WINDOW_AFTER - distance for distance, word in enumerate(after) if _same_word(name, word)]
        total += max(near, default=0)
    return total


def _same_word(name: str, word: str) -> bool:
    """"ship" cues shipping_zip, "zip" cues zip_code: a shared stem of four letters, or the word."""
    if name == word:
        return True
    shorter, longer = sorted((name, word), key=len)
    return len(shorter) >= 4 and longer.startswith(shorter)


def _unanchored(pattern: str) -> str:
    return pattern.removeprefix("^").removesuffix("$").removeprefix(r"\A").removesuffix(r"\Z")
