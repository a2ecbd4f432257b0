"""The names a constraint expression sees for one candidate reply (API.md, "Constraint expressions").

In scope: `reply`, `message`, `turn_number`, every known field by its name, and `tools` (this
turn's tool results by tool id). Figures taken from the reply (money amounts, percents, words) are
*functions* of `reply` (`amounts(reply)`), never names, so nothing derived from the reply can
shadow a field value — the reference system let a reply's `$80` override a stored `amount`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.domain.expressions import REPLY_NAMES

logger = Logger(child=True)


def expression_variables(
    *,
    reply: str,
    message: str,
    turn_number: int,
    known: Mapping[str, Any],
    tool_results: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The variables for one reply. Field values are copied as they are; a None value stays None
    (the expression naming it is then not applicable).

    A field cannot be named like a reserved name (publish rejects it); should one reach here, the
    engine's value wins so that `reply` always means the reply, and the clash is logged by name.
    """
    variables: dict[str, Any] = dict(known)
    clashes = sorted(REPLY_NAMES & variables.keys())
    if clashes:
        logger.warning("field names clash with reserved expression names", extra={"names": clashes})
    variables["reply"] = reply
    variables["message"] = message
    variables["turn_number"] = turn_number
    variables["tools"] = {tool_id: dict(result) for tool_id, result in tool_results.items()}
    return variables
