"""The LLM judge: one call per draft checks every hard constraint that has no expression.

Fails closed by default (config.enforcement.judge_fails_closed): a provider error, an unreadable
answer or a rule the answer says nothing about is a violation, "judge could not confirm
compliance" — the reference system passed all three. Its offline answer is the heuristic judge of
offline_judge.py, so the offline provider judges too, honestly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.domain.config import Config
from chalicelib.domain.rule import Rule
from chalicelib.domain.turn import Violation
from chalicelib.focal.enforcement.offline_judge import offline_answer
from chalicelib.providers.llm import LlmMessage, LlmProvider, LlmRequest, ProviderError

logger = Logger(child=True)

UNCONFIRMED = "judge could not confirm compliance"

JUDGE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "verdicts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "rule_id": {"type": "string"},
                    "complies": {"type": "boolean"},
                    "reason": {"type": "string"},
                },
                "required": ["rule_id", "complies", "reason"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["verdicts"],
    "additionalProperties": False,
}

_SYSTEM = (
    "You are a compliance judge for a customer-facing assistant. For each rule below, decide "
    "whether the candidate reply complies with it. Judge only the reply, not the rule's wisdom. "
    "Answer with JSON only: {\"verdicts\": [{\"rule_id\": ..., \"complies\": true|false, "
    "\"reason\": one short sentence}]}, exactly one verdict per rule id."
)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(?P<body>.*?)\s*```\s*$", re.DOTALL)


class _Verdict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    rule_id: str
    complies: bool
    reason: str = ""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    verdicts: list[_Verdict]


@dataclass(frozen=True, slots=True)
class JudgeResult:
    violations: tuple[Violation, ...]
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def judge(reply: str, rules: Sequence[Rule], llm: LlmProvider, config: Config) -> JudgeResult:
    """Judge `reply` against every rule in `rules` in one call; no rules, no call.

    Never raises: provider errors and unreadable answers follow judge_fails_closed.
    """
    if not rules:
        return JudgeResult(violations=())
    rule_ids = [rule.id for rule in rules]
    try:
        response = llm.complete(_request(reply, rules, config))
    except ProviderError as exc:
        logger.warning("judge provider failed", extra={"rule_ids": rule_ids, "error_code": exc.code})
        return JudgeResult(violations=_unconfirmed(rules, config, "provider_error"), llm_calls=1)
    verdicts = _parse(response.text)
    if verdicts is None:
        violations = _unconfirmed(rules, config, "unreadable_answer")
    else:
        violations = _violations(rules, verdicts, config)
    logger.info("judge verdicts", extra={"rule_ids": rule_ids,
                                         "violated": [violation.rule_id for violation in violations]})
    return JudgeResult(violations=violations, llm_calls=1, prompt_tokens=response.prompt_tokens,
                       completion_tokens=response.completion_tokens)


def _request(reply: str, rules: Sequence[Rule], config: Config) -> LlmRequest:
    task = config.llm.tasks.judge
    listed = "\n".join(f"- rule_id: {json.dumps(rule.id)}; rule: {rule.action}" for rule in rules)
    prompt = f"Rules:\n{listed}\n\nCandidate reply:\n<<<\n{reply}\n>>>"
    return LlmRequest(
        task="judge",
        messages=(LlmMessage("system", _SYSTEM), LlmMessage("user", prompt)),
        model=task.model,
        temperature=task.temperature if task.temperature is not None else config.llm.temperature,
        max_tokens=task.max_tokens if task.max_tokens is not None else config.llm.max_tokens,
        json_schema=JUDGE_SCHEMA,
        timeout_s=config.llm.timeout_s,
        max_retries=config.llm.max_retries,
        offline_answer=offline_answer(reply, rules),
    )


def _parse(text: str) -> dict[str, _Verdict] | None:
    """rule id -> verdict, or None when the answer is not the JSON the schema asks for."""
    fenced = _FENCE.match(text)
    body = fenced.group("body") if fenced else text
    try:
        answer = _Answer.model_validate_json(body)
    except ValidationError:
        return None
    verdicts: dict[str, _Verdict] = {}
    for verdict in answer.verdicts:
        verdicts.setdefault(verdict.rule_id, verdict)  # a repeated id: the first verdict counts
    return verdicts


def _violations(rules: Sequence[Rule], verdicts: Mapping[str, _Verdict],
                config: Config) -> tuple[Violation, ...]:
    violations: list[Violation] = []
    missing: list[Rule] = []
    for rule in rules:
        verdict = verdicts.get(rule.id)
        if verdict is None:
            missing.append(rule)
        elif not verdict.complies:
            # The judge's reason is left out: it may quote the reply, and turn records keep this.
            violations.append(Violation(rule_id=rule.id, message=f"the reply does not comply with: "
                                        f"{rule.action}", lane="judge"))
    if missing:
        violations.extend(_unconfirmed(missing, config, "missing_verdict"))
    return tuple(violations)


def _unconfirmed(rules: Sequence[Rule], config: Config, why: str) -> tuple[Violation, ...]:
    rule_ids = [rule.id for rule in rules]
    if not config.enforcement.judge_fails_closed:
        logger.warning("judge could not confirm; passing (judge_fails_closed is off)",
                       extra={"rule_ids": rule_ids, "why": why})
        return ()
    logger.warning("judge could not confirm; failing closed", extra={"rule_ids": rule_ids, "why": why})
    return tuple(Violation(rule_id=rule.id, message=f"{UNCONFIRMED}: {rule.action}", lane="judge")
                 for rule in rules)
