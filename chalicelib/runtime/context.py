"""The TurnContext FOCAL runs on, built from the turn the gateway loaded (runtime/gateway.py)."""

from __future__ import annotations

from chalicelib.domain.interlocutor import InterlocutorData
from chalicelib.focal.privacy import as_placeholders
from chalicelib.focal.types import TurnContext, TurnInput
from chalicelib.runtime.gateway import LoadedTurn


def turn_context(turn: LoadedTurn, interlocutor: InterlocutorData, *, message: str, now_s: float) -> TurnContext:
    """What FOCAL reads of a loaded turn: live values only, and the history as the LLM may read it
    (placeholders)."""
    published, session, channel = turn.published, turn.session, turn.session.key.channel
    live = {name: value for name, value in interlocutor.fields.items() if value.is_live(now_s)}
    if len(live) != len(interlocutor.fields):
        interlocutor = interlocutor.model_copy(update={"fields": live})
    return TurnContext(
        tenant_id=published.tenant_id, agent_id=published.agent_id, agent=turn.agent, config=turn.config,
        session=session, interlocutor=interlocutor,
        turn=TurnInput(message=message, channel=channel, turn_number=session.turn_count + 1, now_s=now_s),
        history=tuple((entry.get("role", ""), as_placeholders(entry.get("text", ""))) for entry in session.history),
    )
