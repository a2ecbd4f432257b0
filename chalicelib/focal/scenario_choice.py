"""Choose the scenario a message starts, or switches to, by its margin over the alternatives.

Pure: no I/O. Used by the offline understanding; the model tier judges the same question itself
from the same retrieved candidates. A scenario starts only when it is both good enough and clearly
better than the runner-up; inside a scenario, another one takes over only when it beats the active
one by a wider margin, so an answer to the current step ("it arrived damaged") never derails the
flow, while a clear change of mind ("actually I want to return it instead") does.
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.focal.types import ScoredItem

START_SCORE = 0.3  # the least a scenario must score to start
START_MARGIN = 0.05  # ... and its lead over the runner-up
SWITCH_MARGIN = 0.15  # inside a scenario: the lead another one needs over the active one


def choose_scenario(scenarios: Sequence[ScoredItem], active: str | None) -> str | None:
    """The scenario to start (no active one) or to switch to (another than `active`), or None.

    `scenarios`: retrieved scenarios, best first. Never raises.
    """
    ranked = sorted((item for item in scenarios if item.kind == "scenario"), key=lambda item: -item.score)
    if active is None:
        if not ranked or ranked[0].score < START_SCORE:
            return None
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        return ranked[0].item_id if ranked[0].score - runner_up >= START_MARGIN else None
    current = next((item.score for item in ranked if item.item_id == active), 0.0)
    others = [item for item in ranked if item.item_id != active]
    if not others or others[0].score < START_SCORE:
        return None
    runner_up = max(current, others[1].score if len(others) > 1 else 0.0)
    return others[0].item_id if others[0].score - runner_up >= SWITCH_MARGIN else None
