"""Privacy: what of the interlocutor's data an LLM prompt, a turn record or a log line may contain.

The LLM sees a schema mask (names, types, whether a value exists), never a stored value. Texts
kept after a turn have every PII value replaced by its field's mask ‹name›: each version the turn
knows (the live one, the one it superseded, a tool's), and, for PII fields typed email or phone,
anything shaped like one (a superseded address the user repeats, a second address never stored).
Pure; no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.domain.interlocutor import FieldDefinition, FieldType

_SHORT = 4  # values shorter than this are masked as whole words only, not inside other words
_PHONE_SEPARATORS = r"[\s().-]*"
# Shapes, linear on any text: a match starts only at the start of a token (lookbehind) and the
# local part never gives characters back (possessive), so a 20,000-character word is read once.
_EMAIL_CHAR = r"[^\s@<>()\[\],;:\"'‹›]"
_EMAIL_SHAPE = rf"(?<!{_EMAIL_CHAR}){_EMAIL_CHAR}++@{_EMAIL_CHAR}+\.[A-Za-z]{{2,}}"
# 9 to 15 digits with the usual separators: a phone number, not a date (8 digits) or a price.
_PHONE_SHAPE = r"(?<![\w+(])\+?\(?\d(?:[ ().-]{0,2}\d){8,14}(?!\w)"
_SHAPES: Mapping[FieldType, tuple[int, str]] = {FieldType.EMAIL: (-1, _EMAIL_SHAPE),
                                                 FieldType.PHONE: (-2, _PHONE_SHAPE)}


def schema_mask(fields: Sequence[FieldDefinition], known: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the LLM may know of the agent's fields: name, type, description, enum values, has_value.

    Never a stored value, not even of a non-PII field (a prompt is not the place to decide).
    """
    mask: list[dict[str, Any]] = []
    for field in fields:
        entry: dict[str, Any] = {"name": field.name, "type": field.type.value}
        if field.description:
            entry["description"] = field.description
        if field.values:
            entry["values"] = list(field.values)
        entry["has_value"] = _is_set(known.get(field.name))
        mask.append(entry)
    return mask


def mask_text(text: str, fields: Sequence[FieldDefinition], values: Mapping[str, Any]) -> str:
    """`text` with every occurrence of a PII field's value replaced by the field's mask ‹name›.

    Case-insensitive; list values item by item (pass every known version of a field as a list,
    see all_versions); phone numbers whatever their spacing or punctuation (digits only, +,
    spaces, dots, dashes, brackets). Longer values are matched first, so a value containing
    another is masked whole; then anything shaped like an email or a phone number is masked when
    a PII field has that type. Non-PII fields are left as they are.
    """
    pattern, masks = _masking_pattern(fields, values)
    if pattern is None or not text:
        return text
    return pattern.sub(lambda match: masks[match.lastgroup or ""], text)


_MASK = re.compile(r"‹([A-Za-z0-9_.-]+)›")


def as_placeholders(text: str) -> str:
    """Masks turned into template placeholders (‹email› -> {{ email }}), for text an LLM reads:
    the model can repeat the placeholder, and the engine fills it after generation."""
    return _MASK.sub(lambda match: "{{ " + match.group(1) + " }}", text)


def all_versions(*layers: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Every value each name has in any of `layers` (e.g. after the turn, before it, what it
    superseded), as one list per name for mask_text."""
    merged: dict[str, list[Any]] = {}
    for layer in layers:
        for name, value in layer.items():
            items = merged.setdefault(name, [])
            for item in value if isinstance(value, list | tuple | set) else [value]:
                if _is_set(item) and item not in items:
                    items.append(item)
    return merged


def masked_values(fields: Sequence[FieldDefinition], values: Mapping[str, Any]) -> dict[str, str]:
    """Field values as text for turn records: PII fields (and unknown names) become their mask."""
    by_name = {field.name: field for field in fields}
    shown: dict[str, str] = {}
    for name, value in values.items():
        field = by_name.get(name)
        if field is None or field.pii:
            shown[name] = field.mask if field is not None else f"‹{name}›"
        else:
            shown[name] = _as_text(value)
    return shown


def _masking_pattern(fields: Sequence[FieldDefinition],
                     values: Mapping[str, Any]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    alternatives: list[tuple[int, str, str]] = []  # (length, regex, mask)
    for field in fields:
        value = values.get(field.name)
        if not field.pii or not _is_set(value):
            continue
        items = value if isinstance(value, list | tuple | set) else [value]
        for item in items:
            for literal in _forms(item):
                alternatives.append((len(literal), _literal_regex(literal), field.mask))
            if field.type is FieldType.PHONE:
                phone = _phone_regex(str(item))
                if phone is not None:
                    alternatives.append((len(str(item)) + 1, phone, field.mask))
    shapes = {field.type: field.mask for field in reversed(fields) if field.pii and field.type in _SHAPES}
    for kind, mask in shapes.items():  # after every literal value: a known value keeps its own mask
        order, shape = _SHAPES[kind]
        alternatives.append((order, shape, mask))
    if not alternatives:
        return None, {}
    alternatives.sort(key=lambda entry: -entry[0])  # longest first: alternation takes the first match
    masks = {f"m{position}": mask for position, (_, _, mask) in enumerate(alternatives)}
    joined = "|".join(f"(?P<m{position}>{regex})" for position, (_, regex, _) in enumerate(alternatives))
    return re.compile(joined, re.IGNORECASE), masks


def _forms(value: Any) -> list[str]:
    """The spellings of one value as it may appear in text."""
    if isinstance(value, bool):
        return []  # "yes"/"true" are not identifying; masking them would garble every reply
    text = str(value).strip()
    forms = [text] if text else []
    if isinstance(value, float) and value.is_integer():
        forms.append(str(int(value)))
    return forms


def _literal_regex(literal: str) -> str:
    escaped = re.escape(literal)
    if len(literal) < _SHORT:
        return rf"(?<!\w){escaped}(?!\w)"
    # A number is not found inside a longer number (12345 is not in 123456).
    before = r"(?<!\d)" if literal[0].isdigit() else ""
    after = r"(?!\d)" if literal[-1].isdigit() else ""
    return before + escaped + after


def _phone_regex(value: str) -> str | None:
    digits = re.sub(r"\D", "", value)
    if len(digits) < 6:
        return None
    # Any formatting of the same digits, not inside a longer number.
    return r"(?<![\d+])\+?" + _PHONE_SEPARATORS.join(digits) + r"(?!\d)"


def _is_set(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | tuple | set | dict):
        return len(value) > 0
    return True


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return json.dumps(value, default=str)
