"""Execute one logical turn of a locked session: load context, run FOCAL, commit in one transaction.

Shared by the synchronous API path (turns.py) and the queue worker. The caller holds the session
lock and passes its fencing token: the commit carries it, so a turn that outlived its lock cannot
commit over the newer turn that took the lock (and the version check catches a session that moved
on by any other way).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.domain.bundle import PublishedBundle
from chalicelib.domain.config import Config
from chalicelib.domain.errors import RucheError
from chalicelib.domain.ids import new_id, now_iso
from chalicelib.domain.interlocutor import InterlocutorData
from chalicelib.domain.session import Session, SessionStatus
from chalicelib.domain.turn import Outcome, TranscriptMessage, TurnCommit, TurnRecord
from chalicelib.domain.usage import MonthUsage, QuotaBreach
from chalicelib.focal.agent import LoadedAgent
from chalicelib.focal.pipeline import FocalResult, run_focal
from chalicelib.focal.privacy import mask_text
from chalicelib.focal.tools import http_tool_runner
from chalicelib.focal.types import FocalDeps
from chalicelib.providers.llm import LlmProvider, LlmRequest, LlmResponse, ProviderError
from chalicelib.providers.tools_http import HttpToolClient
from chalicelib.runtime.context import turn_context
from chalicelib.runtime.events import emit_turn_events
from chalicelib.runtime.faults import fault_point
from chalicelib.runtime.log import logger, turn_keys
from chalicelib.runtime.metrics import publish_turn
from chalicelib.runtime.quota import announce, breach_of, quota_reply
from chalicelib.runtime.records import next_session, outcome_of, turn_record
from chalicelib.runtime.services import Services

# Tools must finish well inside the Lambda timeout, leaving room for generation and enforcement.
TOOL_BUDGET_S = 15.0
# A turn starts no LLM attempt after this, and no attempt runs past it: a hostile or broken model
# ends in the fallback reply instead of holding its worker (and the queue's visibility timeout,
# 120 s, is never reached by a turn still running).
TURN_DEADLINE_S = 60.0


@dataclass(frozen=True, slots=True)
class TurnDone:
    turn_id: str
    session: Session  # after the commit
    reply: str | None  # None: the session is handed off and the agent stays silent
    outcome: Outcome
    record: TurnRecord
    refused: QuotaBreach | None = None  # past a monthly quota: nothing ran, the message was kept


class _UnavailableLlm:
    """Stands in when the tenant's LLM cannot even be built (e.g. a missing secret): every call
    fails as a provider error would, so the turn ends in its fallback instead of a 500."""

    name = "unavailable"

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def complete(self, request: LlmRequest) -> LlmResponse:
        raise ProviderError(self._reason)


class DeadlineLlm:
    """An LLM provider whose calls all end by the turn's deadline (monotonic seconds)."""

    def __init__(self, inner: LlmProvider, *, deadline_s: float) -> None:
        self.name, self._inner, self._deadline_s = inner.name, inner, deadline_s

    def complete(self, request: LlmRequest) -> LlmResponse:
        remaining = self._deadline_s - time.monotonic()
        if remaining <= 0.05:
            raise ProviderError("the turn's deadline has passed")
        timeout = min(request.timeout_s, remaining)
        retries = max(0, min(request.max_retries, int(remaining // timeout) - 1))  # each attempt may take `timeout`
        return self._inner.complete(replace(request, timeout_s=timeout, max_retries=retries))


# Asked at the commit point with the turn's result (None: refused by a quota, nothing ran); False
# drops the turn (it was superseded).
CommitGate = Callable[[FocalResult | None], bool]


def execute_turn(svc: Services, agent: LoadedAgent, session: Session, message: str, *,
                 channel: str, fence: int, may_commit: CommitGate | None = None,
                 tenant_layer: dict[str, Any] | None = None, interlocutor: InterlocutorData | None = None,
                 inbound: Sequence[tuple[str, str]] = (), turn_id: str | None = None,
                 month: MonthUsage | None = None) -> TurnDone | None:
    """Run and commit one turn; None when `may_commit` dropped it.

    `tenant_layer` and `interlocutor` are read here when the caller did not batch them already.
    `inbound`: (message id, text) of each inbox message this logical turn answers: the transcript
    keeps their ids, and they leave the inbox in the commit; without it the message gets a new id.
    `month`: the tenant's usage this month (read with the turn's first batch); past a quota the
    turn is refused (runtime/quota.py) but committed, so the message is kept (and leaves the inbox).
    `fence`: the fencing token of the session lock the caller holds (turns.hold_session).
    Raises StaleSession if the session moved on meanwhile, its lock was taken over by a turn that
    committed, or those messages were answered already.
    """
    published = agent.published
    tenant_id, now_s, started = published.tenant_id, time.time(), time.monotonic()
    turn_id, turn_number = turn_id or new_id("turn"), session.turn_count + 1
    with turn_keys(tenant_id=tenant_id, agent_id=published.agent_id, session_id=session.session_id,
                   turn_id=turn_id):
        said = list(inbound) or [(new_id("msg"), message)]
        answered = tuple(message_id for message_id, _ in inbound)  # only inbox messages come as `inbound`
        if session.status is SessionStatus.HANDOFF:
            return _silent_turn(svc, published, session, message, turn_id=turn_id, channel=channel, now_s=now_s,
                                said=said, answered=answered, fence=fence)
        layer = svc.config_store.get_tenant_layer(tenant_id) if tenant_layer is None else tenant_layer
        step = session.scenario

        def resolve_for(scenario_id: str | None, step_id: str | None) -> Config:
            return svc.resolver.for_turn(layer, published, channel=channel, scenario_id=scenario_id,
                                         step_id=step_id).config

        config = resolve_for(step.scenario_id if step else None, step.step_id if step else None)
        breach = breach_of(svc, config, month, now_s) if month is not None else None
        if breach is not None:
            if may_commit is not None and not may_commit(None):
                return None  # a newer message is waiting: the next turn answers (or refuses) them all
            return _refused_turn(svc, published, session, message, breach, turn_id=turn_id, channel=channel,
                                 now_s=now_s, said=said, answered=answered, fence=fence)
        if interlocutor is None:
            interlocutor = svc.interlocutors.load(tenant_id, session.interlocutor_id, now_s)
        data = interlocutor or InterlocutorData(interlocutor_id=session.interlocutor_id)
        ctx = turn_context(agent, session, data, config=config, message=message, channel=channel,
                           now_s=now_s)
        deps = FocalDeps(
            llm=DeadlineLlm(_llm(svc, tenant_id, config), deadline_s=started + TURN_DEADLINE_S),
            embedder=svc.embedder_for(tenant_id, config),
            tools=http_tool_runner(HttpToolClient(allow_private=config.network.allow_private)),
            resolve_config=resolve_for,
        )
        result = run_focal(ctx, deps, tool_deadline_s=min(time.monotonic() + TOOL_BUDGET_S, started + TURN_DEADLINE_S))
        if may_commit is not None and not may_commit(result):
            logger.info("turn superseded by a newer message: reply dropped")
            return None
        heads = {name: value.version for name, value in data.fields.items()}
        done = _commit(svc, published, session, result, message=message, turn_id=turn_id,
                       turn_number=turn_number, channel=channel, now_s=now_s, heads=heads, said=said,
                       answered=answered, fence=fence)
        publish_turn(done.record, (time.monotonic() - started) * 1000)  # committed turns only
        return done


def _llm(svc: Services, tenant_id: str, config: Config) -> LlmProvider:
    try:
        return svc.llm_for(tenant_id, config)
    except RucheError as exc:
        logger.warning("LLM provider unavailable for this turn", extra={"error_code": exc.code})
        return _UnavailableLlm(exc.message)


def _commit(svc: Services, published: PublishedBundle, session: Session, result: FocalResult, *,
            message: str, turn_id: str, turn_number: int, channel: str, now_s: float,
            heads: dict[str, int], said: list[tuple[str, str]], answered: tuple[str, ...], fence: int) -> TurnDone:
    fields = published.bundle.fields
    reply = result.enforced.reply
    stamp = now_iso()
    ids = {"turn_id": turn_id, "session_id": session.session_id, "tenant_id": published.tenant_id,
           "agent_id": published.agent_id, "interlocutor_id": session.interlocutor_id}
    record = turn_record(result, ids=ids, agent_version=published.version, turn_number=turn_number,
                         channel=channel, message=message, reply=reply, fields=fields, now_iso=stamp)
    after = next_session(session, result, turn_number=turn_number, message=message, reply=reply, fields=fields,
                         now_iso=stamp, now_s=now_s, history_turns=result.config.session.history_turns)
    transcript = [TranscriptMessage(message_id=message_id, role="user", text=text, created_at=stamp)
                  for message_id, text in said]
    transcript.append(TranscriptMessage(message_id=new_id("msg"), role="agent", text=reply, created_at=stamp))
    svc.sessions.commit(TurnCommit(session=after, expected_version=session.version, record=record,
                                   field_changes=list(result.field_changes), transcript=transcript, now_s=now_s,
                                   field_heads=heads, answered=answered, fence=fence))
    fault_point("after_commit")
    emit_turn_events(svc, record)  # after the commit: only a committed turn is announced
    logger.info("turn committed", extra={
        "rules": list(result.selected_rules), "llm_calls": result.llm_calls,
        "regeneration_attempts": result.enforced.regeneration_attempts,
        "fallback_used": result.enforced.fallback_used, "scenario_action": result.scenario.action,
    })
    return TurnDone(turn_id=turn_id, session=after, reply=reply, outcome=outcome_of(result), record=record)


def _refused_turn(svc: Services, published: PublishedBundle, session: Session, message: str,
                  breach: QuotaBreach, *, turn_id: str, channel: str, now_s: float,
                  said: list[tuple[str, str]], answered: tuple[str, ...], fence: int) -> TurnDone:
    """Past a monthly quota: no LLM call. The message is kept; a channel user gets the agent's
    fallback reply, an API caller a 429 (turns.py). The tenant hears of it once per period."""
    stamp, turn_number = now_iso(), session.turn_count + 1
    reply = "" if channel == "api" else quota_reply(published)
    outcome = Outcome(fallback_used=bool(reply))
    record = TurnRecord(
        turn_id=turn_id, session_id=session.session_id, tenant_id=published.tenant_id,
        agent_id=published.agent_id, agent_version=published.version, interlocutor_id=session.interlocutor_id,
        turn_number=turn_number, channel=channel, message=mask_text(message, published.bundle.fields,
                                                                    session.variables),
        reply=reply, outcome=outcome, created_at=stamp, kind="refused", fallback_reason="quota_exceeded",
    )
    after = session.model_copy(update={"version": session.version + 1, "turn_count": turn_number,
                                       "updated_at": stamp, "last_activity_s": now_s})
    transcript = [TranscriptMessage(message_id=message_id, role="user", text=text, created_at=stamp)
                  for message_id, text in said]
    if reply:
        transcript.append(TranscriptMessage(message_id=new_id("msg"), role="agent", text=reply, created_at=stamp))
    svc.sessions.commit(TurnCommit(session=after, expected_version=session.version, record=record,
                                   transcript=transcript, now_s=now_s, answered=answered, fence=fence))
    logger.warning("turn refused: monthly quota reached", extra={"limit": breach.limit, "quota": breach.quota})
    announce(svc, published.tenant_id, breach)
    return TurnDone(turn_id=turn_id, session=after, reply=reply or None, outcome=outcome, record=record,
                    refused=breach)


def _silent_turn(svc: Services, published: PublishedBundle, session: Session, message: str, *, turn_id: str,
                 channel: str, now_s: float, said: list[tuple[str, str]], answered: tuple[str, ...],
                 fence: int) -> TurnDone:
    """During a handoff the agent stays silent: the message is kept in the transcript for the human."""
    stamp, turn_number = now_iso(), session.turn_count + 1
    fields = published.bundle.fields
    outcome = Outcome(handoff=True)
    record = TurnRecord(
        turn_id=turn_id, session_id=session.session_id, tenant_id=published.tenant_id,
        agent_id=published.agent_id, agent_version=published.version, interlocutor_id=session.interlocutor_id,
        turn_number=turn_number, channel=channel, message=mask_text(message, fields, session.variables),
        reply="", outcome=outcome, created_at=stamp, kind="silent",
    )
    after = session.model_copy(update={"version": session.version + 1, "turn_count": turn_number,
                                       "updated_at": stamp, "last_activity_s": now_s})
    transcript = [TranscriptMessage(message_id=message_id, role="user", text=text, created_at=stamp)
                  for message_id, text in said]
    svc.sessions.commit(TurnCommit(session=after, expected_version=session.version, record=record,
                                   transcript=transcript, now_s=now_s, answered=answered, fence=fence))
    logger.info("turn received during handoff: agent silent")
    return TurnDone(turn_id=turn_id, session=after, reply=None, outcome=outcome, record=record)
