"""Constraint expressions: a small, safe language for hard constraints, guards and transitions.

Parsed with Python's `ast` (never executed by `eval`) and evaluated by our own budgeted tree walk
(domain/evaluation.py) over an allow-list of node types, with a fixed set of functions. An
expression is checked once, at publish time (length, depth, node types, known names and
functions, regex literals, and every part that names nothing is computed within the budget), and
compiled once per bundle. A budget overrun during a turn fails closed (Verdict.overrun).

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

from chalicelib.domain import patterns
from chalicelib.domain.budget import BudgetExceeded
from chalicelib.domain.evaluation import ALLOWED_NODES, Missing, evaluate

MAX_EXPRESSION_CHARS = 2000
MAX_EXPRESSION_NODES = 500  # values and operations (ast.expr), not contexts like Load
MAX_EXPRESSION_DEPTH = 100  # `a + b + c` nests: a chain of 60 terms is 60 deep

# Linear on any text: a figure only starts where a run of digits starts (the lookbehinds), and
# possessive repeats never give digits back, so a 20,000-digit run is read once, not once per
# digit (which made amounts() and percents() quadratic).
_NUMBER = r"\d{1,3}+(?:,\d{3})++(?:\.\d++)?+|\d++(?:\.\d++)?+"
_START = r"(?<!\d)(?<!\d[.,])"
_NUMBER_RE = re.compile(rf"(?<![\w.])-?(?:{_NUMBER})(?![\w])")
_CURRENCY = r"(?:[$€£¥]|USD|EUR|GBP|dollars?|euros?|pounds?)"
_AMOUNT_RE = re.compile(
    rf"(?:{_CURRENCY}\s?(?P<a>{_NUMBER}))|(?:{_START}(?P<b>{_NUMBER})\s?(?:{_CURRENCY}))", re.IGNORECASE
)
_PERCENT_RE = re.compile(rf"{_START}(?P<p>{_NUMBER})\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)
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
    """A search anywhere in the text, like re.search. Raises PatternError for a pattern that cannot
    be used and BudgetExceeded when it runs out of time: a check that cannot finish fails closed."""
    return patterns.compile_tenant_pattern(str(pattern)).search(str(text)) is not None


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
    error: str = ""  # "TypeError: ..." (may quote tenant data: callers keep only the type)
    overrun: str = ""  # the budget it went past (no tenant data); `error` is set too


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    names: frozenset[str]
    _tree: ast.Expression

    def evaluate(self, variables: Mapping[str, Any]) -> Verdict:
        """Evaluate against this turn's variables, within the budget. Never raises."""
        missing = tuple(sorted(name for name in self.names if variables.get(name) is None))
        if missing:
            return Verdict(holds=False, applicable=False, missing=missing)
        try:
            result = evaluate(self._tree, variables, FUNCTIONS)
        except Missing as exc:
            return Verdict(holds=False, applicable=False, missing=(_missing_name(exc.what),))
        except BudgetExceeded as exc:
            return Verdict(holds=False, applicable=True, error=f"BudgetExceeded: {exc.reason}", overrun=exc.reason)
        except patterns.PatternError as exc:  # a pattern built from turn data
            return Verdict(holds=False, applicable=True, error=f"PatternError: {exc}",
                           overrun="a pattern that cannot be used")
        except Exception as exc:  # a type error in tenant data must not crash a turn
            return Verdict(holds=False, applicable=True, error=f"{type(exc).__name__}: {exc}")
        try:
            return Verdict(holds=bool(result), applicable=True)
        except Exception as exc:
            return Verdict(holds=False, applicable=True, error=f"{type(exc).__name__}: {exc}")


def _missing_name(what: str) -> str:
    return f"tools{what}" if what.startswith("[") else what


def compile_expression(source: str, known_names: Iterable[str]) -> Expression:
    """Parse and check an expression. Raises ExpressionError with a message fit for a 422."""
    text = source.strip()
    if not text:
        raise ExpressionError("expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression is longer than {MAX_EXPRESSION_CHARS:,} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error in expression {text!r}: {exc.msg}") from exc
    except (RecursionError, MemoryError, ValueError) as exc:  # deep nesting, NUL bytes
        raise ExpressionError(f"expression {text!r} cannot be parsed ({type(exc).__name__})") from exc
    _check_size(tree, text)
    allowed = frozenset(known_names)
    names: set[str] = set()
    for node in ast.walk(tree):
        _check_node(node, text)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                shown = ast.unparse(node.func)
                raise ExpressionError(f"unknown function {shown!r} in expression {text!r}")
            if node.keywords:
                raise ExpressionError(f"keyword arguments are not allowed in expression {text!r}")
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS or node.id in {"True", "False", "None"}:
                continue
            if node.id not in allowed:
                raise ExpressionError(f"unknown name {node.id!r} in expression {text!r}")
            names.add(node.id)
    # `tools` is a mapping that is always present (empty when no tool ran).
    names.discard("tools")
    _check_literals(tree, text)
    expression = Expression(source=text, names=frozenset(names), _tree=tree)
    _dry_run(expression)
    return expression


def _check_size(tree: ast.Expression, text: str) -> None:
    """A bounded number of parts and depth (no recursion: a tenant's tree depth is not trusted)."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += isinstance(node, ast.expr)
        if count > MAX_EXPRESSION_NODES:
            raise ExpressionError(f"expression {text!r} has more than {MAX_EXPRESSION_NODES} parts")
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionError(f"expression {text!r} nests deeper than {MAX_EXPRESSION_DEPTH} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_node(node: ast.AST, text: str) -> None:
    """Only the language's node types (an allow-list) and plain literals."""
    if type(node) not in ALLOWED_NODES or (isinstance(node, ast.Dict) and None in node.keys):
        what = {ast.JoinedStr: "an f-string", ast.FormattedValue: "an f-string"}.get(
            type(node), type(node).__name__.lower())
        raise ExpressionError(f"{what} is not allowed in expression {text!r}")
    if isinstance(node, ast.Constant) and not isinstance(node.value, str | int | float | bool | None):
        raise ExpressionError(f"{type(node.value).__name__} literals are not allowed in expression {text!r}")


# A reply that exercises the helpers: figures, money, a percentage, words.
_SAMPLE = {"reply": "Your refund of $25.50 (10% off 3 items) is on its way.", "message": "Where is my refund?",
           "turn_number": 1, "tools": {}}


def _check_literals(tree: ast.Expression, text: str) -> None:
    """What can be known before any reply: regex literals are usable, and every part that names
    nothing computes within the budget (`turn_number == 1 or 4000000 ** 4000000 > 0` would pass a
    dry run on turn 1 and blow up on turn 2)."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "matches"
                and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            try:
                patterns.compile_tenant_pattern(node.args[1].value)
            except patterns.PatternError as exc:
                raise ExpressionError(f"the pattern {node.args[1].value!r} {exc} in expression {text!r}") from exc
    for node in _constant_parts(tree.body):
        try:
            evaluate(ast.Expression(body=node), {}, FUNCTIONS)
        except BudgetExceeded as exc:
            raise ExpressionError(f"{ast.unparse(node)!r} cannot be computed within the expression budget "
                                  f"({exc.reason}) in expression {text!r}") from exc
        except Exception as exc:
            raise ExpressionError(f"{ast.unparse(node)!r} cannot be computed ({type(exc).__name__}) "
                                  f"in expression {text!r}") from exc


def _constant_parts(root: ast.expr) -> list[ast.expr]:
    """The largest sub-expressions that name nothing but functions (bare literals left out): the
    same value on every turn, so it can be computed now. Linear: one pass marks what names data."""
    functions = {id(node.func) for node in ast.walk(root) if isinstance(node, ast.Call)}
    order: list[ast.AST] = []  # parents before children
    stack: list[ast.AST] = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(ast.iter_child_nodes(node))
    names_data: dict[int, bool] = {}
    for node in reversed(order):  # children before parents
        names_data[id(node)] = (isinstance(node, ast.Name) and id(node) not in functions) or any(
            names_data[id(child)] for child in ast.iter_child_nodes(node))
    found: list[ast.expr] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if not names_data[id(node)] and not isinstance(node, ast.Slice):  # a slice is no value alone
            if isinstance(node, ast.expr) and not isinstance(node, ast.Constant) and id(node) not in functions:
                found.append(node)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _dry_run(expression: Expression) -> None:
    """An expression over the reply alone is tried on a sample reply: one that fails there would
    fail on every turn (and send every turn to the fallback), so it is refused at publish time."""
    if not expression.names <= REPLY_NAMES:
        return  # it names fields: their values are only known during a turn
    verdict = expression.evaluate(_SAMPLE)
    if verdict.applicable and verdict.error:
        raise ExpressionError(f"expression {expression.source!r} fails on a sample reply: {verdict.error}")
