"""Property: any expression a tenant can write is either refused at publish, or evaluates within its
budget on any turn data, and never raises. Generated from the language's grammar plus the known
bombs' building blocks (huge literals, powers, repetition, f-strings, deep nesting, regexes).

CI size: RUCHE_FUZZ_EXAMPLES examples (default 300, a few seconds); run the full size with e.g.
`RUCHE_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -p no:cacheprovider -q tests/security/test_expressions_fuzz.py`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain.budget import turn_budget
from chalicelib.domain.expressions import REPLY_NAMES, ExpressionError, Verdict, compile_expression

EXAMPLES = int(os.environ.get("RUCHE_FUZZ_EXAMPLES", "300"))
CEILING_S = 2.0  # generous: the budget is 50 ms an expression; the bombs took 100 s
NAMES = REPLY_NAMES | {"amount", "nickname", "codes"}

_ATOMS = st.one_of(
    st.sampled_from(["reply", "message", "turn_number", "amount", "nickname", "codes", 'tools["t"]["k"]',
                     "True", "None", "[]", "[0]", '""']),
    st.integers(min_value=-(10**80), max_value=10**80).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["4000000", "9", "2", "100000000", "1e308", "'%2000000000s'", "'(a+)+$'",
                     "'(?:(?:a{100}){100}){1000}'", "'a'", "'$1,000'"]),
    st.text(alphabet="ab$%1 ,.{}", max_size=8).map(repr),
)
_BINARY = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">=", " in ", " not in ", " and ", " or ",
           "<<", "&", " is "]
_FUNCTIONS = ["len", "min", "max", "abs", "lower", "upper", "contains", "matches", "words", "numbers",
              "amounts", "percents", "eval", "str"]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(_BINARY), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(st.sampled_from(["not ", "-", "+"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(_FUNCTIONS), st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.lists(inner, max_size=4).map(lambda items: f"[{', '.join(items)}]"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(inner, inner, inner).map(lambda t: f"{t[0]}[{t[1]}:{t[2]}]"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(inner, st.integers(min_value=1, max_value=200)).map(lambda t: "not " * t[1] + t[0]),
        inner.map(lambda text: f"f'{{{text}:>2000000000}}'"),
    )


EXPRESSIONS = st.recursive(_ATOMS, _extend, max_leaves=12)
TURN_DATA = st.fixed_dictionaries({
    "reply": st.one_of(st.text(max_size=200), st.integers(0, 20_000).map(lambda n: "1" * n),
                       st.integers(0, 5_000).map(lambda n: "a" * n + "!")),
    "message": st.text(max_size=200),
    "turn_number": st.integers(min_value=1, max_value=10**6),
    "amount": st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=False)),
    "nickname": st.text(max_size=50),
    "codes": st.lists(st.integers(-5, 5), max_size=5),
    "tools": st.just({"t": {"k": "v"}}),
})


def _evaluate(source: str, data: dict[str, Any]) -> tuple[Verdict | None, float]:
    started = time.perf_counter()
    try:
        expression = compile_expression(source, NAMES)
    except ExpressionError:
        return None, time.perf_counter() - started
    with turn_budget():
        verdict = expression.evaluate(data)
    return verdict, time.perf_counter() - started


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=EXPRESSIONS, data=TURN_DATA)
def test_every_expression_is_refused_at_publish_or_evaluates_within_its_budget(
        source: str, data: dict[str, Any]) -> None:
    verdict, elapsed = _evaluate(source, data)  # never raises: refused, or a Verdict
    assert elapsed < CEILING_S, source
    if verdict is not None and verdict.overrun:
        assert verdict.applicable and not verdict.holds  # an overrun fails closed


@settings(max_examples=EXAMPLES, deadline=None)
@given(source=st.text(max_size=300))
def test_arbitrary_text_is_refused_or_evaluates_within_its_budget(source: str) -> None:
    verdict, elapsed = _evaluate(source, {"reply": "a" * 100, "message": "hi", "turn_number": 2, "tools": {}})
    assert elapsed < CEILING_S
    assert verdict is None or isinstance(verdict.holds, bool)
