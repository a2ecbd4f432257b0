"""focal/enforcement: constraint expressions, LLM judge, regeneration loop, fallback (phase 10)."""

from chalicelib.focal.enforcement.expressions import ExpressionCheck, check_expressions
from chalicelib.focal.enforcement.fallback import SAFE_REPLY, choose_fallback
from chalicelib.focal.enforcement.judge import JudgeResult, judge
from chalicelib.focal.enforcement.loop import enforce
from chalicelib.focal.enforcement.variables import expression_variables

__all__ = [
    "SAFE_REPLY",
    "ExpressionCheck",
    "JudgeResult",
    "check_expressions",
    "choose_fallback",
    "enforce",
    "expression_variables",
    "judge",
]
