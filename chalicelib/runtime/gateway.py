"""The turn gateway: every turn Ruche runs goes through `run_turn`.

A synchronous API call (runtime/turns.py), a queued message (runtime/worker.py) and a `ruche test`
line (cli/runner.py, over the in-memory stores) take the same path; a `TurnPolicy` says what
differs between them:

    hold the session lock                                  lock_wait_s, lock_ttl_s
    take what the turn answers                             from_inbox: the pending inbox, oldest
                                                           first; else the caller's one message
    load (phase 1), once: agent, tenant layer, identity,
      session pointer, month usage; session, interlocutor
    wait for more messages                                 accumulates
    run FOCAL, conclude into one commit (execute.py)       supersedes: the commit gate
    deliver the reply, after the lock is released          delivers

Every log line of the turn, from the lock to the delivery, carries tenant, agent, session and turn ids
as soon as they are known. Nothing here imports the pipeline: it loads with the first turn.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from chalicelib.config.resolver import ConfigPosition, ConfigResolver
from chalicelib.domain.errors import Conflict, NotFound, StaleSession
from chalicelib.domain.ids import new_id, now_s
from chalicelib.domain.inbox import InboxMessage
from chalicelib.domain.session import Session, SessionKey, SessionStatus, is_open
from chalicelib.domain.usage import MonthUsage
from chalicelib.runtime.batches import ReturnLater
from chalicelib.runtime.delivery import ReplyRoute, deliver_reply, pushes_replies
from chalicelib.runtime.faults import fault_point
from chalicelib.runtime.log import logger, turn_keys
from chalicelib.runtime.services import Services

if TYPE_CHECKING:
    from chalicelib.domain.bundle import PublishedBundle
    from chalicelib.domain.config import Config
    from chalicelib.domain.interlocutor import InterlocutorData
    from chalicelib.focal.agent import LoadedAgent
    from chalicelib.focal.pipeline import FocalResult
    from chalicelib.runtime.execute import CommitGate, TurnDone
    from chalicelib.stores.ports import SessionLock, TurnStart

# At most this many messages make one logical turn: a transaction of 100 items holds the turn's
# own items, 2 per message (transcript entry + inbox delete) and room for field changes and
# counters; a longer backlog is answered over several turns, oldest first (docs/ARCHITECTURE.md).
MAX_MESSAGES_PER_TURN = 20
LOCK_TTL_S = 90.0  # a sync turn's lock: longer than any turn; a crashed owner's lock expires on its own


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    """What differs between a synchronous API turn and a queued one."""

    # How long the turn waits for a running turn of its session, and how long its own lock lives.
    lock_wait_s: float
    lock_ttl_s: float
    # True: the turn answers what waits in the session's inbox (stores/inbox.py), at most
    # MAX_MESSAGES_PER_TURN, oldest first; a message no longer there was answered, a message whose
    # agent or session is gone is dropped, and a commit that lost a race is looked at again.
    # False: it answers the caller's one message, and the caller hears of whatever went wrong.
    from_inbox: bool
    # Hold while the newest message is younger than session.accumulation_window_ms (ReturnLater).
    accumulates: bool
    # A message that arrives while the turn runs drops its reply, unless an irreversible tool ran;
    # the next turn answers them all.
    supersedes: bool
    # Send the reply through the channel binding (channels whose client does not read it back).
    delivers: bool


# The caller waits for the reply: its lock outlives any turn, and nothing it says is dropped.
SYNC_TURN = TurnPolicy(lock_wait_s=25.0, lock_ttl_s=LOCK_TTL_S, from_inbox=False, accumulates=False,
                       supersedes=False, delivers=False)
# FIFO already runs one record per session, so a crashed worker's session is free again after 30 s; a
# slow turn that outlives its lock still cannot commit over the turn that took it (the fence).
QUEUED_TURN = TurnPolicy(lock_wait_s=25.0, lock_ttl_s=30.0, from_inbox=True, accumulates=True,
                         supersedes=True, delivers=True)


@dataclass(frozen=True, slots=True)
class Arrival:
    """The message that asks for a turn, and how to answer it."""

    key: SessionKey
    text: str
    session_id: str | None = None  # the session the caller named; None: the key's open one
    message_id: str | None = None  # its inbox id, when it waits in the inbox
    turn_id: str | None = None  # the turn id a 202 announced
    route: ReplyRoute | None = None  # where a pushed reply goes


class Skipped(StrEnum):
    """A queued turn that committed nothing, and why."""

    ALREADY_ANSWERED = "already_answered"  # the arrival's message left the inbox: a turn answered it
    DROPPED = "dropped"  # its agent or session is gone: its messages were dropped
    NOT_COMMITTED = "not_committed"  # superseded, or another turn committed first: look again


class HoldForAccumulation(ReturnLater):
    """The session's newest message is younger than its accumulation window: wait for more."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(f"holding the session for {remaining_s:.2f} s more", after_s=remaining_s)
        self.remaining_s = remaining_s


class StepConfigs:
    """A turn's resolved config at each scenario step it visits, each resolved once."""

    def __init__(self, resolver: ConfigResolver, tenant_layer: dict[str, Any], published: PublishedBundle,
                 channel: str) -> None:
        self.tenant_layer = tenant_layer
        self._resolver, self._published, self._channel = resolver, published, channel
        self._resolved: dict[tuple[str | None, str | None], Config] = {}

    def at(self, scenario_id: str | None = None, step_id: str | None = None) -> Config:
        where = (scenario_id, step_id)
        if where not in self._resolved:
            at = ConfigPosition(channel=self._channel, scenario_id=scenario_id, step_id=step_id)
            self._resolved[where] = self._resolver.for_turn(self.tenant_layer, self._published, at).config
        return self._resolved[where]


@dataclass(frozen=True, slots=True)
class LoadedTurn:
    """Phase 1: what a turn reads before FOCAL runs, read once."""

    agent: LoadedAgent
    session: Session
    interlocutor: InterlocutorData | None  # None when it was not read with the session (read at need)
    month: MonthUsage
    configs: StepConfigs

    @property
    def published(self) -> PublishedBundle:
        return self.agent.published

    @property
    def config(self) -> Config:
        """The config at the session's step: the turn's config until FOCAL moves the scenario."""
        step = self.session.scenario
        return self.configs.at(step.scenario_id if step else None, step.step_id if step else None)


@dataclass(frozen=True, slots=True)
class Inbound:
    """The user messages one turn answers, and the id the turn commits under."""

    turn_id: str
    messages: tuple[InboxMessage, ...]  # oldest first
    from_inbox: bool = False  # they leave the session's inbox in the turn's commit
    pending: tuple[str, ...] = field(default=(), repr=False)  # every inbox id seen (the commit gate's baseline)

    @classmethod
    def one(cls, text: str, turn_id: str | None = None) -> Inbound:
        """The caller's one message, which never waited in the inbox."""
        return cls(turn_id=turn_id or new_id("turn"), messages=(InboxMessage(message_id=new_id("msg"), text=text,
                                                                  received_at=now_s()),))

    @property
    def text(self) -> str:
        """What FOCAL reads: messages that waited together are one turn's message, a line each."""
        return "\n".join(message.text for message in self.messages)

    @property
    def answered(self) -> tuple[str, ...]:
        """The inbox messages the commit removes (none for a message that never waited in it)."""
        return tuple(message.message_id for message in self.messages) if self.from_inbox else ()


def run_turn(svc: Services, arrival: Arrival, policy: TurnPolicy) -> TurnDone | Skipped:
    """Answer the arrival (and whatever waits with it) in one committed turn.

    A sync turn raises NotFound (unknown agent, a session that is not there), Conflict (an ended
    session, the lock held past lock_wait_s) and StaleSession; a queued one answers Skipped
    instead, and raises HoldForAccumulation while it waits for more messages.
    """
    if not policy.from_inbox and arrival.turn_id is None:
        arrival = replace(arrival, turn_id=new_id("turn"))  # named from the first line on, the lock's too
    key = arrival.key
    known = {"session_id": arrival.session_id, "turn_id": arrival.turn_id}
    with turn_keys(tenant_id=key.tenant_id, agent_id=key.agent_id,
                   **{name: value for name, value in known.items() if value is not None}):
        with hold_session(svc.session_lock, key, wait_s=policy.lock_wait_s, ttl_s=policy.lock_ttl_s) as fence:
            outcome = _run_locked(svc, arrival, policy, fence)
        if policy.delivers and arrival.route is not None:
            _deliver(svc, arrival, outcome)
    return outcome


def _run_locked(svc: Services, arrival: Arrival, policy: TurnPolicy, fence: int) -> TurnDone | Skipped:
    from chalicelib.runtime.execute import execute_turn  # noqa: PLC0415 - the pipeline loads on first use

    inbound = _take_inbox(svc, arrival) if policy.from_inbox else Inbound.one(arrival.text, arrival.turn_id)
    if inbound is None:
        return Skipped.ALREADY_ANSWERED
    start = svc.turn_reads.start(arrival.key)
    if start.latest_version is None:
        if not policy.from_inbox:
            raise NotFound(f"agent {arrival.key.agent_id!r} not found")
        return _drop(svc, arrival, inbound, agent_gone=True)
    agent = svc.agents.version(arrival.key.tenant_id, arrival.key.agent_id, start.latest_version)
    try:
        turn = load_turn(svc, start, agent, arrival.key, arrival.session_id)
    except (NotFound, Conflict):
        if not policy.from_inbox:
            raise
        return _drop(svc, arrival, inbound, agent_gone=False)
    with turn_keys(session_id=turn.session.session_id):
        if policy.accumulates:
            _hold_for_more(turn, inbound)
        # Supersede only a turn that took everything pending: a longer backlog is answered in order.
        superseding = policy.supersedes and len(inbound.pending) <= MAX_MESSAGES_PER_TURN
        try:
            done = execute_turn(svc, turn, inbound, fence=fence,
                                may_commit=_commit_gate(svc, arrival.key, inbound) if superseding else None)
        except StaleSession as exc:
            if not policy.from_inbox:
                raise
            # Another turn committed first (a lock taken over, a redelivery): the caller looks again.
            logger.info("turn not committed: the session or its inbox moved on",
                        extra={"reason": exc.details.get("reason", "stale_session"), "turn_id": inbound.turn_id})
            return Skipped.NOT_COMMITTED
    return Skipped.NOT_COMMITTED if done is None else done


def load_turn(svc: Services, start: TurnStart, agent: LoadedAgent, key: SessionKey, wanted: str | None) -> LoadedTurn:
    """Phase 1, after the first batched read (`start`: the agent's head, tenant layer, identity,
    session pointer and month usage) and the agent version it names (cached per container): the
    second read, the session (`wanted`, else the key's open one, opened if need be) and its
    interlocutor's live data.

    Raises NotFound for a wanted session that does not exist, Conflict for one that has ended.
    """
    configs = StepConfigs(svc.resolver, start.tenant_layer, agent.published, key.channel)
    session, data = _open_session(svc, key, start, configs, wanted)
    return LoadedTurn(agent=agent, session=session, interlocutor=data, month=start.month, configs=configs)


def _open_session(svc: Services, key: SessionKey, start: TurnStart, configs: StepConfigs,
                  wanted: str | None) -> tuple[Session, InterlocutorData | None]:
    now = now_s()
    if wanted is not None and start.interlocutor_id is None:  # its interlocutor was erased meanwhile
        raise NotFound(f"session {wanted!r} not found")
    interlocutor_id = start.interlocutor_id or svc.interlocutors.resolve(key.tenant_id, key.channel, key.user_id)
    session_id = wanted or start.session_id
    session, data = (svc.turn_reads.session_and_data(key.tenant_id, session_id, interlocutor_id, now)
                     if session_id else (None, None))
    if wanted is not None:
        # A session belongs to one (agent, channel, user): naming someone else's is as good as unknown.
        if session is None or session.key != key:
            raise NotFound(f"session {wanted!r} not found")
        if session.status is SessionStatus.ENDED:
            raise Conflict(f"session {wanted!r} has ended; send the turn without session_id to start a new one")
        return session, data
    idle_timeout_s = configs.at().session.idle_timeout_s
    if session is None or not is_open(session, now, idle_timeout_s):
        session = svc.sessions.open(key, interlocutor_id, now, idle_timeout_s)
    return session, data


def _take_inbox(svc: Services, arrival: Arrival) -> Inbound | None:
    """The oldest pending messages, at most MAX_MESSAGES_PER_TURN; None when the arrival's is gone
    from the inbox (a turn answered it). The turn id is the oldest message's: the one its 202
    announced, else one derived from its id, so a retried record commits under the same id."""
    pending = svc.inbox.pending(arrival.key)
    fault_point("after_inbox_read")
    if arrival.message_id not in {entry.message_id for entry in pending}:
        return None
    batch = pending[:MAX_MESSAGES_PER_TURN]
    return Inbound(turn_id=batch[0].turn_id or derived_turn_id(batch[0].message_id), messages=tuple(batch),
                   from_inbox=True,
                   pending=tuple(entry.message_id for entry in pending))


def derived_turn_id(message_id: str) -> str:
    """The turn id of a turn led by this message when no API call named one: stable across retries."""
    return "turn_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def _drop(svc: Services, arrival: Arrival, inbound: Inbound, *, agent_gone: bool) -> Skipped:
    """Nobody is left to answer: the agent was deleted (every pending message of the key goes), or
    the session the message named was erased or ended (that message goes; the others may be for
    the key's open session)."""
    if agent_gone:
        logger.info("turn messages for an agent that no longer exists: dropped",
                    extra={"messages": len(inbound.pending)})
        svc.inbox.discard(arrival.key, list(inbound.pending))
    else:
        logger.info("turn message for a session that is gone or ended: dropped",
                    extra={"message_id": arrival.message_id})
        svc.inbox.discard(arrival.key, [arrival.message_id] if arrival.message_id else [])
    return Skipped.DROPPED


def _hold_for_more(turn: LoadedTurn, inbound: Inbound) -> None:
    """Raise HoldForAccumulation while the newest message is younger than the accumulation window."""
    window_s = turn.config.session.accumulation_window_ms / 1000.0
    remaining = max(message.received_at for message in inbound.messages) + window_s - time.time()
    if remaining > 0:
        raise HoldForAccumulation(remaining)


def _commit_gate(svc: Services, key: SessionKey, inbound: Inbound) -> CommitGate:
    def may_commit(result: FocalResult | None) -> bool:
        irreversible_ran = result is not None and result.tools.irreversible_ran
        # Superseded: the record's next turn takes every pending message as one.
        return irreversible_ran or not svc.inbox.arrived_since(key, list(inbound.pending))

    return may_commit


def _deliver(svc: Services, arrival: Arrival, outcome: TurnDone | Skipped) -> None:
    """Send a committed reply; for a message answered already, make sure its own turn's reply went out.

    Only a crash between a commit and its delivery leaves work for a redelivered record; the
    delivery key makes a reply go out at most once however often this runs.
    """
    route = arrival.route
    if route is None or not pushes_replies(arrival.key.channel):
        return
    if not isinstance(outcome, Skipped):
        if outcome.reply is not None:
            with turn_keys(turn_id=outcome.turn_id, session_id=outcome.session.session_id):
                deliver_reply(svc, route, outcome.turn_id, outcome.reply)
        return
    if outcome is not Skipped.ALREADY_ANSWERED or arrival.message_id is None:
        return
    turn_id = arrival.turn_id or derived_turn_id(arrival.message_id)
    committed = svc.sessions.committed_turn(arrival.key, turn_id)
    if committed is None:
        return  # answered by a turn another record led; that record delivers
    reply = svc.sessions.reply_of(arrival.key.tenant_id, committed.session_id, committed.turn_number)
    if reply is not None:
        deliver_reply(svc, route, turn_id, reply)


@contextmanager
def hold_session(lock: SessionLock, key: SessionKey, *, wait_s: float = SYNC_TURN.lock_wait_s,
                 ttl_s: float = LOCK_TTL_S) -> Iterator[int]:
    """Hold the session's lock for the block, yielding its fencing token for the commit; wait for a
    running turn to finish first."""
    name = f"session:{key.as_string()}"
    deadline = time.monotonic() + wait_s
    token = lock.acquire(name, ttl_s)
    while token is None:
        if time.monotonic() > deadline:
            raise Conflict("another turn of this session is still running; try again shortly")
        time.sleep(0.05)
        token = lock.acquire(name, ttl_s)
    try:
        yield token
    finally:
        lock.release(name, token)
