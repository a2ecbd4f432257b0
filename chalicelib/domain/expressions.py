"""Constraint expressions: a small, safe language for hard constraints, guards and transitions.

Parsed with Python's `ast` (never executed by `eval`) and evaluated by simpleeval with a fixed set
of functions. An expression is checked once, at publish time (syntax, known names, known
functions), and compiled once per bundle; evaluating it is then a tree walk.

A name with no value this turn makes the expression *not applicable*: it neither passes nor fails
by accident, and the caller decides (a hard constraint passes and says so; a guard or a transition
does not hold). See API.md, "Constraint expressions".
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from simpleeval import EvalWithCompoundTypes, NameNotDefined

from chalicelib.domain import patterns

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_NUMBER_RE = re.compile(rf"(?<![\w.])-?(?:{_NUMBER})(?![\w])")
_CURRENCY = r"(?:[$€£¥]|USD|EUR|GBP|dollars?|euros?|pounds?)"
_AMOUNT_RE = re.compile(
    rf"(?:{_CURRENCY}\s?(?P<a>{_NUMBER}))|(?:(?P<b>{_NUMBER})\s?(?:{_CURRENCY}))", re.IGNORECASE
)
_PERCENT_RE = re.compile(rf"(?P<p>{_NUMBER})\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)
_WORD_RE = re.compile(r"\b[\w'’-]+\b")


def _to_number(text: str) -> float:
    return float(text.replace(",", ""))


def numbers(text: object) -> list[float]:
    """Every plain number mentioned in the text ("3 items, 1,200.50" -> [3.0, 1200.5])."""
    return [_to_number(m.group(0)) for m in _NUMBER_RE.finditer(str(text))]


def amounts(text: object) -> list[float]:
    """Money figures: a number with a currency sign or word before or after it."""
    return [_to_number(m.group("a") or m.group("b")) for m in _AMOUNT_RE.finditer(str(text))]


def percents(text: object) -> list[float]:
    return [_to_number(m.group("p")) for m in _PERCENT_RE.finditer(str(text))]


def contains(text: object, part: object) -> bool:
    return str(part).casefold() in str(text).casefold()


def matches(text: object, pattern: object) -> bool:
    """A search anywhere in the text, like re.search; a pattern that runs out of time does not match."""
    return patterns.search(str(pattern), str(text)) is not None


def words(text: object) -> int:
    return len(_WORD_RE.findall(str(text)))


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "lower": _lower,
    "upper": _upper,
    "contains": contains,
    "matches": matches,
    "words": words,
    "numbers": numbers,
    "amounts": amounts,
    "percents": percents,
}

# Names every constraint expression may use, besides the agent's declared fields.
REPLY_NAMES = frozenset({"reply", "message", "turn_number", "tools"})


class ExpressionError(ValueError):
    """The expression cannot be used: bad syntax, an unknown name or an unknown function."""


@dataclass(frozen=True, slots=True)
class Verdict:
    holds: bool
    applicable: bool
    missing: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    names: frozenset[str]
    _tree: ast.Expression

    def evaluate(self, variables: Mapping[str, Any]) -> Verdict:
        """Evaluate against this turn's variables. Never raises for missing data or bad values."""
        missing = tuple(sorted(name for name in self.names if variables.get(name) is None))
        if missing:
            return Verdict(holds=False, applicable=False, missing=missing)
        evaluator = EvalWithCompoundTypes(names=dict(variables), functions=dict(FUNCTIONS))
        try:
            result = evaluator.eval(self.source, previously_parsed=self._tree.body)
        except NameNotDefined as exc:
            return Verdict(holds=False, applicable=False, missing=(str(exc.name),))
        except (KeyError, IndexError) as exc:
            # tools["lookup"]["status"] when the tool did not run or returned no such key
            return Verdict(holds=False, applicable=False, missing=(f"tools[{exc}]",))
        except Exception as exc:  # a type error in tenant data must not crash a turn
            return Verdict(holds=False, applicable=True, error=f"{type(exc).__name__}: {exc}")
        return Verdict(holds=bool(result), applicable=True)


def compile_expression(source: str, known_names: Iterable[str]) -> Expression:
    """Parse and check an expression. Raises ExpressionError with a message fit for a 422."""
    text = source.strip()
    if not text:
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error in expression {text!r}: {exc.msg}") from exc
    allowed = frozenset(known_names)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                shown = ast.unparse(node.func)
                raise ExpressionError(f"unknown function {shown!r} in expression {text!r}")
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS or node.id in {"True", "False", "None"}:
                continue
            if node.id not in allowed:
                raise ExpressionError(f"unknown name {node.id!r} in expression {text!r}")
            names.add(node.id)
        elif isinstance(node, ast.Attribute | ast.Lambda | ast.NamedExpr | ast.ListComp |
                        ast.SetComp | ast.DictComp | ast.GeneratorExp | ast.Await | ast.Yield):
            raise ExpressionError(f"{type(node).__name__.lower()} is not allowed in expression {text!r}")
    # `tools` is a mapping that is always present (empty when no tool ran).
    names.discard("tools")
    _check_literals(tree, text)
    expression = Expression(source=text, names=frozenset(names), _tree=tree)
    _dry_run(expression)
    return expression


# A reply that exercises the helpers: figures, money, a percentage, words.
_SAMPLE = {"reply": "Your refund of $25.50 (10% off 3 items) is on its way.", "message": "Where is my refund?",
           "turn_number": 1, "tools": {}}


def _check_literals(tree: ast.Expression, text: str) -> None:
    """What can be known before any reply: regex literals compile, constant parts evaluate."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "matches"
                and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            try:
                patterns.compiled(node.args[1].value)
            except patterns.PatternError as exc:
                raise ExpressionError(f"the pattern {node.args[1].value!r} {exc} in expression {text!r}") from exc
        elif isinstance(node, ast.BinOp) and not any(isinstance(inner, ast.Name) for inner in ast.walk(node)):
            try:  # 9 ** 9 ** 9: simpleeval refuses it on every turn, so refuse it now
                EvalWithCompoundTypes(functions=dict(FUNCTIONS)).eval(ast.unparse(node))
            except Exception as exc:
                raise ExpressionError(f"{ast.unparse(node)!r} cannot be computed ({type(exc).__name__}) "
                                      f"in expression {text!r}") from exc


def _dry_run(expression: Expression) -> None:
    """An expression over the reply alone is tried on a sample reply: one that fails there would
    fail on every turn (and send every turn to the fallback), so it is refused at publish time."""
    if not expression.names <= REPLY_NAMES:
        return  # it names fields: their values are only known during a turn
    verdict = expression.evaluate(_SAMPLE)
    if verdict.applicable and verdict.error:
        raise ExpressionError(f"expression {expression.source!r} fails on a sample reply: {verdict.error}")
