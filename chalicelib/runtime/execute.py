"""Run FOCAL on a loaded turn and conclude it into one commit: the turn gateway's inner half.

runtime/gateway.py holds the session lock, loads the turn (phase 1) and passes the lock's fencing
token: the commit carries it, so a turn that outlived its lock cannot commit over the newer turn
that took the lock (and the version check catches a session that moved on by any other way).
A turn concludes one of three ways, each one commit: FOCAL's reply, silence during a handoff, or a
refusal past a monthly quota.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from chalicelib.domain.config import Config
from chalicelib.domain.errors import RucheError
from chalicelib.domain.ids import new_id, now_iso
from chalicelib.domain.interlocutor import FieldChange, InterlocutorData
from chalicelib.domain.session import Session, SessionStatus
from chalicelib.domain.turn import Outcome, TranscriptMessage, TurnCommit, TurnRecord
from chalicelib.domain.usage import QuotaBreach
from chalicelib.focal.pipeline import FocalResult, run_focal
from chalicelib.focal.types import FocalDeps
from chalicelib.providers.llm import LlmProvider, LlmRequest, LlmResponse, ProviderError
from chalicelib.runtime.context import turn_context
from chalicelib.runtime.events import emit_turn_events
from chalicelib.runtime.faults import fault_point
from chalicelib.runtime.gateway import Inbound, LoadedTurn
from chalicelib.runtime.log import logger, turn_keys
from chalicelib.runtime.quota import announce, breach_of, quota_reply
from chalicelib.runtime.records import TurnFacts, bumped_session, next_session, plain_record, turn_record
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
    message_ids: tuple[str, ...] = ()  # the user messages it answered, oldest first
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


def execute_turn(svc: Services, turn: LoadedTurn, inbound: Inbound, *, fence: int,
                 may_commit: CommitGate | None = None) -> TurnDone | None:
    """Run and commit one turn; None when `may_commit` dropped it.

    The transcript keeps the inbound messages' ids, and inbox messages leave the inbox in the
    commit. Past a monthly quota the turn is refused (runtime/quota.py) but committed, so the
    message is kept. `fence`: the token of the session lock the caller holds (gateway.hold_session).
    Raises StaleSession if the session moved on meanwhile, its lock was taken over by a turn that
    committed, or those messages were answered already.
    """
    started = time.monotonic()
    conclusion = _Conclusion(svc, turn, inbound, fence=fence, now_s=time.time())
    with turn_keys(turn_id=inbound.turn_id):
        if turn.session.status is SessionStatus.HANDOFF:
            return conclusion.silent()
        config = turn.config
        breach = breach_of(svc, config, turn.month, conclusion.now_s)
        if breach is not None:
            if may_commit is not None and not may_commit(None):
                return None  # a newer message is waiting: the next turn answers (or refuses) them all
            return conclusion.refused(breach)
        interlocutor_id = turn.session.interlocutor_id
        data = (turn.interlocutor or svc.interlocutors.load(turn.published.tenant_id, interlocutor_id, conclusion.now_s)
                or InterlocutorData(interlocutor_id=interlocutor_id))
        ctx = turn_context(turn, data, message=inbound.text, now_s=conclusion.now_s)
        deps = FocalDeps(
            llm=DeadlineLlm(_llm(svc, turn.published.tenant_id, config), deadline_s=started + TURN_DEADLINE_S),
            embedder=svc.embedder_for(turn.published.tenant_id, config),
            tools=svc.tools_for(config),
            resolve_config=turn.configs.at,
        )
        result = run_focal(ctx, deps, tool_deadline_s=min(time.monotonic() + TOOL_BUDGET_S, started + TURN_DEADLINE_S))
        if may_commit is not None and not may_commit(result):
            logger.info("turn superseded by a newer message: reply dropped")
            return None
        done = conclusion.answered(result, data)
        svc.publish_turn_metrics(done.record, (time.monotonic() - started) * 1000)  # committed turns only
        return done


def _llm(svc: Services, tenant_id: str, config: Config) -> LlmProvider:
    try:
        return svc.llm_for(tenant_id, config)
    except RucheError as exc:
        logger.warning("LLM provider unavailable for this turn", extra={"error_code": exc.code})
        return _UnavailableLlm(exc.message)


class _Conclusion:
    """Writes what one turn concluded — the session after it, its record, its transcript — in one commit."""

    def __init__(self, svc: Services, turn: LoadedTurn, inbound: Inbound, *, fence: int, now_s: float) -> None:
        self.svc, self.turn, self.inbound, self.fence, self.now_s = svc, turn, inbound, fence, now_s
        self.facts = TurnFacts(turn_id=inbound.turn_id, published=turn.published, session=turn.session,
                               message=inbound.text, now_iso=now_iso(), now_s=now_s)

    def answered(self, result: FocalResult, data: InterlocutorData) -> TurnDone:
        """FOCAL's reply, enforced."""
        record, reply = turn_record(result, self.facts), result.enforced.reply
        heads = {name: value.version for name, value in data.fields.items()}
        done = self._commit(next_session(result, self.facts), record, reply,
                            field_changes=list(result.field_changes), heads=heads)
        emit_turn_events(self.svc, record)  # after the commit: only a committed turn is announced
        logger.info("turn committed", extra={
            "rules": list(result.selected_rules), "llm_calls": result.llm_calls,
            "regeneration_attempts": result.enforced.regeneration_attempts,
            "fallback_used": result.enforced.fallback_used, "scenario_action": result.scenario.action,
        })
        return done

    def silent(self) -> TurnDone:
        """During a handoff the agent stays silent: the message is kept in the transcript for the human."""
        record = plain_record(self.facts, Outcome(handoff=True), kind="silent")
        done = self._commit(bumped_session(self.facts), record, None)
        logger.info("turn received during handoff: agent silent")
        return done

    def refused(self, breach: QuotaBreach) -> TurnDone:
        """Past a monthly quota: no LLM call. The message is kept; a channel user gets the agent's
        fallback reply, an API caller a 429 (turns.py). The tenant hears of it once per period."""
        reply = "" if self.turn.session.key.channel == "api" else quota_reply(self.turn.published)
        outcome = Outcome(fallback_used=bool(reply))
        record = plain_record(self.facts, outcome, kind="refused", reply=reply, fallback_reason="quota_exceeded")
        done = self._commit(bumped_session(self.facts), record, reply or None)
        logger.warning("turn refused: monthly quota reached", extra={"limit": breach.limit, "quota": breach.quota})
        announce(self.svc, self.turn.published.tenant_id, breach)
        return replace(done, refused=breach)

    def _commit(self, after: Session, record: TurnRecord, reply: str | None, *,
                field_changes: list[FieldChange] | None = None, heads: dict[str, int] | None = None) -> TurnDone:
        stamp = self.facts.now_iso
        transcript = [TranscriptMessage(message_id=message.message_id, role="user", text=message.text,
                                        created_at=stamp) for message in self.inbound.messages]
        if reply is not None:
            transcript.append(TranscriptMessage(message_id=new_id("msg"), role="agent", text=reply, created_at=stamp))
        self.svc.sessions.commit(TurnCommit(
            session=after, expected_version=self.turn.session.version, record=record,
            field_changes=field_changes or [], transcript=transcript, now_s=self.now_s, field_heads=heads,
            answered=self.inbound.answered, fence=self.fence,
        ))
        fault_point("after_commit")
        return TurnDone(turn_id=self.inbound.turn_id, session=after, reply=reply, outcome=record.outcome, record=record,
                        message_ids=tuple(message.message_id for message in self.inbound.messages))
