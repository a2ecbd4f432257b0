"""The deterministic lane: check a reply against the hard constraints that carry an expression.

Expressions are compiled once per published bundle version, when it is loaded (focal/agent.py: with
the bundle's field names and the reserved names, exactly as publish validated them), and reused by
every turn of that version.
Outcomes per rule: holds -> passes; names a value missing this turn -> not applicable (passes, and
the rule id is recorded); does not hold, cannot be evaluated (a type error in tenant data), or goes
past its evaluation budget (domain/evaluation.py) -> a violation.
Violation messages name the constraint and the rule's action, never a variable value.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.domain.expressions import Expression, ExpressionError, compile_expression
from chalicelib.domain.rule import Rule
from chalicelib.domain.turn import Violation


@dataclass(frozen=True, slots=True)
class ExpressionCheck:
    violations: tuple[Violation, ...]
    not_applicable: tuple[str, ...]  # rule ids whose expression named a value missing this turn


def check_expressions(
    reply: str,
    rules: Sequence[Rule],
    variables: Mapping[str, Any],
    *,
    compiled: Mapping[str, Expression] | None = None,
) -> ExpressionCheck:
    """Check every rule of `rules` that has an expression; rules without one are ignored.

    `compiled` comes from the loaded agent (LoadedAgent.constraints); a rule missing from it is compiled on the spot
    from its own names (the bundle was validated at publish). Never raises. `reply` is the text
    checked: it is bound to the name `reply` whatever `variables` says.
    """
    scope = {**variables, "reply": reply}
    violations: list[Violation] = []
    not_applicable: list[str] = []
    for rule in rules:
        if rule.expression is None:
            continue
        expression = compiled.get(rule.id) if compiled is not None else None
        if expression is None or expression.source != rule.expression.strip():
            expression = _compile_trusted(rule.expression)
        if expression is None:
            violations.append(_violation(rule, "cannot be compiled"))
            continue
        verdict = expression.evaluate(scope)
        if not verdict.applicable:
            not_applicable.append(rule.id)
        elif verdict.overrun:
            # Fails closed: a check that could not finish proves nothing. The reason names a limit only.
            violations.append(_violation(rule, f"exceeded its evaluation budget ({verdict.overrun})"))
        elif verdict.error:
            # The error text may quote tenant data: keep only its type.
            kind = verdict.error.split(":", 1)[0]
            violations.append(_violation(rule, f"could not be evaluated ({kind})"))
        elif not verdict.holds:
            violations.append(_violation(rule, "does not hold"))
    return ExpressionCheck(violations=tuple(violations), not_applicable=tuple(not_applicable))


def _violation(rule: Rule, what: str) -> Violation:
    source = (rule.expression or "").strip()
    return Violation(rule_id=rule.id, message=f"constraint `{source}` {what}: {rule.action}",
                     lane="expression")


@lru_cache(maxsize=1024)
def _compile_trusted(source: str) -> Expression | None:
    """Compile an expression that publish already validated, accepting the names it uses."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        return None
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    try:
        return compile_expression(source, names)
    except ExpressionError:
        return None
