"""The TurnContext of one turn, built the same way by the server (execute.py) and by `ruche test`."""

from __future__ import annotations

from chalicelib.domain.config import Config
from chalicelib.domain.interlocutor import InterlocutorData
from chalicelib.domain.session import Session
from chalicelib.focal.agent import LoadedAgent
from chalicelib.focal.privacy import as_placeholders
from chalicelib.focal.types import TurnContext, TurnInput


def turn_context(agent: LoadedAgent, session: Session, interlocutor: InterlocutorData, *,
                 config: Config, message: str, channel: str, now_s: float) -> TurnContext:
    """Phase 1's result: live values only, and the history as the LLM may read it (placeholders)."""
    published = agent.published
    live = {name: value for name, value in interlocutor.fields.items() if value.is_live(now_s)}
    if len(live) != len(interlocutor.fields):
        interlocutor = interlocutor.model_copy(update={"fields": live})
    return TurnContext(
        tenant_id=published.tenant_id, agent_id=published.agent_id, agent=agent, config=config,
        session=session, interlocutor=interlocutor,
        turn=TurnInput(message=message, channel=channel, turn_number=session.turn_count + 1, now_s=now_s),
        history=tuple((entry.get("role", ""), as_placeholders(entry.get("text", ""))) for entry in session.history),
    )
