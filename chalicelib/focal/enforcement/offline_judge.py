"""The offline judge: a deterministic reading of simple rule actions, the judge's offline answer.

It understands two shapes and says so when it cannot check anything else:
- prohibitions ("never mention X", "do not promise/guarantee X", "don't say X", "avoid X"): the
  reply must not contain a quoted phrase of the action, nor any content word of its object;
- obligations ("always mention/include X"): the reply must contain every quoted phrase, or else
  every content word of the object.
Matching is case-insensitive and by word start, so "refunds" in a rule also catches "refund".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.domain.rule import Rule

NOT_CHECKABLE = "offline judge: not checkable"

_VERBS = (r"mention|say|promise|guarantee|discuss|talk about|use|recommend|offer|reveal|share"
          r"|disclose|suggest|quote|state|include|name|refer to|bring up")
_PROHIBITION = re.compile(
    rf"^\s*(?:you\s+)?(?:(?P<avoid>avoid)|never|do\s+not|don['’]?t|must\s+not|mustn['’]?t|should\s+not"
    rf"|shouldn['’]?t)\s+(?:ever\s+)?(?P<verb>(?:{_VERBS})(?:ing)?\b(?:\s*(?:or|and|/|,)\s*(?:{_VERBS})\b)*)?"
    rf"(?P<object>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_OBLIGATION = re.compile(
    rf"^\s*(?:you\s+)?(?:must\s+)?always\s+(?:{_VERBS})\b(?:\s*(?:or|and|/|,)\s*(?:{_VERBS})\b)*"
    rf"(?P<object>.*)$",
    re.IGNORECASE | re.DOTALL,
)
# A single quote opens a phrase only where it starts a word, so "don't" opens nothing.
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|(?<!\w)'([^']+)'(?!\w)|‘([^’]+)’")
# The object ends where a qualifying clause starts: "never mention X, even if asked".
_CLAUSE_END = re.compile(r"[.;:()!?]|\b(?:even|unless|when|whenever|if|except|without|because|since|while)\b",
                         re.IGNORECASE)
_WORD = re.compile(r"[\w][\w'’-]*")
_STOPWORDS = frozenset({
    "a", "an", "the", "any", "to", "of", "about", "or", "and", "with", "for", "from", "in", "on", "at",
    "by", "as", "is", "are", "be", "being", "our", "your", "their", "its", "other", "others", "that",
    "this", "these", "those", "such", "e.g", "eg", "i.e", "ie", "like", "including", "anything",
    "something", "specific", "name", "names", "mention", "mentions", "it", "them", "they", "you", "we",
    "us", "me", "customer", "customers", "user", "users", "reply", "replies", "response", "responses",
    "message", "messages",
})


@dataclass(frozen=True, slots=True)
class OfflineVerdict:
    rule_id: str
    complies: bool
    reason: str


def offline_verdicts(reply: str, rules: Sequence[Rule]) -> list[OfflineVerdict]:
    """One verdict per rule, in order."""
    return [_verdict(reply, rule) for rule in rules]


def offline_answer(reply: str, rules: Sequence[Rule]) -> str:
    """The offline verdicts as the JSON answer the judge schema asks for."""
    verdicts = [{"rule_id": v.rule_id, "complies": v.complies, "reason": v.reason}
                for v in offline_verdicts(reply, rules)]
    return json.dumps({"verdicts": verdicts})


def _verdict(reply: str, rule: Rule) -> OfflineVerdict:
    action = rule.action.strip()
    obligation = _OBLIGATION.match(action)
    if obligation:
        phrases, words = _terms(action, obligation.group("object"))
        if not phrases and not words:
            return OfflineVerdict(rule.id, True, NOT_CHECKABLE)
        absent = [p for p in phrases if not _has_phrase(reply, p)] if phrases else \
            [w for w in words if not _has_word(reply, w)]
        if absent:
            return OfflineVerdict(rule.id, False, f"offline judge: the reply lacks {_listed(absent)}")
        return OfflineVerdict(rule.id, True, "offline judge: required terms present")
    prohibition = _PROHIBITION.match(action)
    if prohibition:
        phrases, words = _terms(action, prohibition.group("object"))
        if not phrases and not (prohibition.group("verb") or prohibition.group("avoid")):
            words = []  # "never give legal advice": an unknown verb, nothing literal to look for
        if not phrases and not words:
            return OfflineVerdict(rule.id, True, NOT_CHECKABLE)
        found = [p for p in phrases if _has_phrase(reply, p)] + [w for w in words if _has_word(reply, w)]
        if found:
            return OfflineVerdict(rule.id, False, f"offline judge: the reply contains {_listed(found)}")
        return OfflineVerdict(rule.id, True, "offline judge: no prohibited term found")
    return OfflineVerdict(rule.id, True, NOT_CHECKABLE)


def _terms(action: str, obj: str) -> tuple[list[str], list[str]]:
    """Quoted phrases of the action, else the content words of the object."""
    phrases = [next(group for group in match.groups() if group) for match in _QUOTED.finditer(action)]
    phrases = [phrase.strip() for phrase in phrases if phrase.strip()]
    if phrases:
        return phrases, []
    obj = _CLAUSE_END.split(obj, maxsplit=1)[0]
    words = [word for word in _WORD.findall(obj) if word.casefold().strip("'’") not in _STOPWORDS]
    return [], list(dict.fromkeys(words))


def _has_phrase(reply: str, phrase: str) -> bool:
    return phrase.casefold() in reply.casefold()


def _has_word(reply: str, word: str) -> bool:
    if len(word) <= 3:  # a short name ("X", "AT&T" parts) must be a whole word
        return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", reply, re.IGNORECASE) is not None
    stem = word[:-1] if word[-1] in "sS" else word
    return re.search(rf"(?<!\w){re.escape(stem)}", reply, re.IGNORECASE) is not None


def _listed(terms: Sequence[str]) -> str:
    return ", ".join(f"“{term}”" for term in terms)
