"""The budgeted evaluator of constraint expressions: a tree walk over an allow-list of node types.

Tenants write expressions and users write the text they run on, so evaluation is bounded in every
dimension a tenant could stretch (numbers are the limits; docs/SECURITY.md lists them):

- steps: each node visited is one step, at most MAX_STEPS per evaluation;
- time: EXPRESSION_SLICE_S of wall clock per evaluation, and the turn's budget (domain/budget.py);
- sizes: integers stay under MAX_INT_BITS bits (checked *before* `**` and `*` compute), strings
  and lists built by `+` stay under MAX_SEQUENCE items, and sequences are never repeated with `*`
  nor formatted with `%` (`"x" * 10**9`, `"%2000000000s" % x`).

Going past any of these raises BudgetExceeded with a reason fit for a turn record. Pure: no I/O.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.domain.budget import BudgetExceeded, current, now_s

MAX_STEPS = 10_000
MAX_INT_BITS = 256
MAX_SEQUENCE = 100_000
MAX_EXPONENT = 10_000
EXPRESSION_SLICE_S = 0.05


class Missing(LookupError):
    """A name, key or index this turn does not provide: the expression is not applicable."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class _Walk:
    """One evaluation: the names in scope, the functions, and what is left of the budget."""

    __slots__ = ("_deadline", "_functions", "_names", "_steps")

    def __init__(self, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]],
                 slice_s: float) -> None:
        self._names = names
        self._functions = functions
        self._steps = MAX_STEPS
        self._deadline = now_s() + slice_s

    def eval(self, node: ast.AST) -> Any:
        self._steps -= 1
        if self._steps < 0:
            raise BudgetExceeded(f"more than {MAX_STEPS:,} evaluation steps")
        if now_s() > self._deadline:
            raise BudgetExceeded("ran out of evaluation time")
        handler = _HANDLERS.get(type(node))
        if handler is None:  # compile_expression refuses these; a tree built elsewhere fails closed
            raise BudgetExceeded(f"{type(node).__name__.lower()} is not allowed")
        return handler(self, node)

    def name(self, node: ast.Name) -> Any:
        if node.id not in self._names:
            raise Missing(node.id)
        return self._names[node.id]

    def call(self, node: ast.Call) -> Any:
        function = self._functions[node.func.id] if isinstance(node.func, ast.Name) else None
        if function is None or node.keywords:
            raise BudgetExceeded("only the listed functions may be called, without keywords")
        return function(*[self.eval(argument) for argument in node.args])


def evaluate(tree: ast.Expression, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]],
             *, slice_s: float = EXPRESSION_SLICE_S) -> Any:
    """The value of `tree`. Raises Missing, BudgetExceeded, or the error the data causes
    (TypeError, ZeroDivisionError, ...). Draws its time from the turn's budget, if one is open."""
    budget = current()
    if budget is not None:
        left = budget.expressions_left_s
        if left <= 0:
            raise BudgetExceeded("the turn's expression budget is spent")
        slice_s = min(slice_s, left)
    started = now_s()
    try:
        return _Walk(names, functions, slice_s).eval(tree.body)
    finally:
        if budget is not None:
            budget.spend_expressions(now_s() - started)


def _sized(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded(f"an integer over {MAX_INT_BITS} bits")
    if isinstance(value, str | list | tuple) and len(value) > MAX_SEQUENCE:
        raise BudgetExceeded(f"a text or list over {MAX_SEQUENCE:,} items")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers_only(symbol: str, left: Any, right: Any) -> None:
    for value in (left, right):
        if not isinstance(value, int | float):
            raise TypeError(f"`{symbol}` takes numbers, not {type(value).__name__}")


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple) \
            and len(left) + len(right) > MAX_SEQUENCE:
        raise BudgetExceeded(f"a text or list over {MAX_SEQUENCE:,} items")
    return _sized(left + right)


def _multiply(left: Any, right: Any) -> Any:
    if isinstance(left, str | list | tuple | dict | set) or isinstance(right, str | list | tuple | dict | set):
        raise BudgetExceeded("sequence repetition with `*` is not allowed")
    _numbers_only("*", left, right)
    if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
        raise BudgetExceeded(f"an integer over {MAX_INT_BITS} bits")
    return _sized(left * right)


def _power(base: Any, exponent: Any) -> Any:
    _numbers_only("**", base, exponent)
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1 \
            and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        raise BudgetExceeded(f"an integer over {MAX_INT_BITS} bits")
    if abs(exponent) > MAX_EXPONENT:  # 1.0000001 ** 10**9 is cheap but pointless: keep one rule
        raise BudgetExceeded(f"an exponent over {MAX_EXPONENT:,}")
    return _sized(base**exponent)


def _arithmetic(symbol: str, function: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        _numbers_only(symbol, left, right)  # `%` on a string would be printf formatting
        return _sized(function(left, right))
    return apply


_BINARY: Mapping[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: _arithmetic("-", operator.sub),
    ast.Mult: _multiply,
    ast.Div: _arithmetic("/", operator.truediv),
    ast.FloorDiv: _arithmetic("//", operator.floordiv),
    ast.Mod: _arithmetic("%", operator.mod),
    ast.Pow: _power,
}

_COMPARE: Mapping[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda left, right: left in right, ast.NotIn: lambda left, right: left not in right,
}

_UNARY: Mapping[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos,
}

# The node types the language has; compile_expression refuses every other one.
ALLOWED_NODES: frozenset[type[ast.AST]] = frozenset({
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp,
    ast.BinOp, ast.Compare, ast.IfExp, ast.Call, ast.Subscript, ast.Slice, ast.List, ast.Tuple,
    ast.Dict, ast.Set, *_BINARY, *_COMPARE, *_UNARY,
})


def _bool_op(walk: _Walk, node: ast.BoolOp) -> Any:
    value: Any = None
    for operand in node.values:
        value = walk.eval(operand)
        if isinstance(node.op, ast.And) != bool(value):  # `and` stops at a falsy value, `or` at a truthy one
            return value
    return value


def _compare(walk: _Walk, node: ast.Compare) -> bool:
    left = walk.eval(node.left)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = walk.eval(comparator)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def _subscript(walk: _Walk, node: ast.Subscript) -> Any:
    container = walk.eval(node.value)
    if isinstance(node.slice, ast.Slice):
        parts = (node.slice.lower, node.slice.upper, node.slice.step)
        return container[slice(*(None if part is None else walk.eval(part) for part in parts))]
    key = walk.eval(node.slice)
    try:
        return container[key]
    except (KeyError, IndexError) as exc:
        # tools["lookup"]["status"] when the tool did not run or returned no such key
        raise Missing(f"[{key!r}]") from exc


_HANDLERS: Mapping[type[ast.AST], Callable[[_Walk, Any], Any]] = {
    ast.Constant: lambda walk, node: node.value,
    ast.Name: _Walk.name,
    ast.Call: _Walk.call,
    ast.BoolOp: _bool_op,
    ast.Compare: _compare,
    ast.Subscript: _subscript,
    ast.UnaryOp: lambda walk, node: _UNARY[type(node.op)](walk.eval(node.operand)),
    ast.BinOp: lambda walk, node: _BINARY[type(node.op)](walk.eval(node.left), walk.eval(node.right)),
    ast.IfExp: lambda walk, node: walk.eval(node.body) if walk.eval(node.test) else walk.eval(node.orelse),
    ast.List: lambda walk, node: [walk.eval(item) for item in node.elts],
    ast.Tuple: lambda walk, node: tuple(walk.eval(item) for item in node.elts),
    ast.Set: lambda walk, node: {walk.eval(item) for item in node.elts},
    ast.Dict: lambda walk, node: {walk.eval(key) if key is not None else None: walk.eval(value)
                                  for key, value in zip(node.keys, node.values, strict=True)},
}
