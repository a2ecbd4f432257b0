"""Select rules: decide which retrieved rules apply to this turn, and record why.

Pure: no I/O, no clock, no LLM. Called only by focal/pipeline.py.

Per rule, the first reason that applies is recorded:
- "unknown"        the candidate names no rule of this bundle;
- "disabled";
- "out_of_scope"   a scenario rule outside its scenario, a step rule outside its step;
- "not_confirmed"  the understanding call did not confirm the candidate applies;
- "cooldown"       a rule that fired at turn t may fire again at turn t + cooldown_turns + 1
                   (cooldown_turns = 2: fired at 5, quiet at 6 and 7, may fire at 8);
- "max_fires"      it already fired max_fires_per_session times in this session (0 = unlimited).
Then relationships, in this order:
1. entails: every selected rule pulls in the rules it entails ("entailed_by:r3"), transitively,
   provided each passes its own disabled / scope / cooldown / max-fires filters (no confirmation
   is needed: the entailing rule vouches for it);
2. excludes (either direction counts): resolved by priority, then score, then id; rules are kept
   in that order unless they conflict with a rule already kept ("excluded_by:r12"), so of two
   conflicting rules one always survives;
3. depends_on: a rule stays only while every rule it depends on is selected
   ("missing_dependency:r2"), and an entailed rule only while a rule that entailed it is
   selected ("entailer_dropped:r3"); repeated until nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chalicelib.domain.bundle import AgentBundle
from chalicelib.domain.rule import Rule, Scope
from chalicelib.domain.session import RuleUsage, ScenarioState
from chalicelib.focal.types import RuleDecision, ScoredItem, Understanding

APPLIES = "applies"


@dataclass(frozen=True, slots=True)
class TurnPosition:
    """Where the session is as the turn starts: cooldowns count turns, and a scoped rule needs the
    session on its scenario (or step)."""

    turn_number: int
    state: ScenarioState | None = None

    @property
    def scenario_id(self) -> str | None:
        return self.state.scenario_id if self.state is not None else None

    @property
    def step_id(self) -> str | None:
        return self.state.step_id if self.state is not None else None


def select_rules(candidates: Sequence[ScoredItem], understanding: Understanding, bundle: AgentBundle,
                 usage: Mapping[str, RuleUsage], at: TurnPosition) -> list[RuleDecision]:
    """One decision per candidate and per entailed rule: selected ones first, by priority desc.

    Never raises.
    """
    scores = {item.item_id: item.score for item in candidates if item.kind == "rule"}
    confirmed = set(understanding.applicable_rules)
    reasons: dict[str, str] = {}  # rule id -> reason; insertion order = candidate order
    for rule_id in scores:
        rule = bundle.rule(rule_id)
        if rule is None:
            reasons[rule_id] = "unknown"
            continue
        reasons[rule_id] = _filter(rule, usage.get(rule_id), at) or (
            APPLIES if rule_id in confirmed else "not_confirmed")

    entailers = _entail(bundle, reasons, usage, at)
    rules = {rule_id: rule for rule_id in reasons if (rule := bundle.rule(rule_id)) is not None}
    _exclude(rules, reasons, scores)
    _drop_unsupported(rules, reasons, entailers)

    def order(rule_id: str) -> tuple[int, float, str]:
        rule = rules.get(rule_id)
        return (-(rule.priority if rule else 0), -scores.get(rule_id, 0.0), rule_id)

    chosen = sorted((rule_id for rule_id, reason in reasons.items() if _is_selected(reason)), key=order)
    others = [rule_id for rule_id, reason in reasons.items() if not _is_selected(reason)]
    return [RuleDecision(rule_id=rule_id, selected=_is_selected(reasons[rule_id]), reason=reasons[rule_id],
                         score=scores.get(rule_id, 0.0)) for rule_id in chosen + others]


def _is_selected(reason: str) -> bool:
    return reason == APPLIES or reason.startswith("entailed_by:")


def _filter(rule: Rule, used: RuleUsage | None, at: TurnPosition) -> str | None:
    """The reason this rule cannot apply this turn whatever the user said, or None."""
    scenario_id, step_id = at.scenario_id, at.step_id
    if not rule.enabled:
        return "disabled"
    if rule.scope is Scope.SCENARIO and rule.scenario != scenario_id:
        return "out_of_scope"
    if rule.scope is Scope.STEP and (rule.scenario != scenario_id or rule.step != step_id):
        return "out_of_scope"
    if used is not None and used.fires > 0:
        if rule.cooldown_turns and at.turn_number <= used.last_turn + rule.cooldown_turns:
            return "cooldown"
        if rule.max_fires_per_session and used.fires >= rule.max_fires_per_session:
            return "max_fires"
    return None


def _entail(bundle: AgentBundle, reasons: dict[str, str], usage: Mapping[str, RuleUsage],
            at: TurnPosition) -> dict[str, list[str]]:
    """Pull in entailed rules; returns entailed rule id -> the selected rules that entailed it."""
    entailers: dict[str, list[str]] = {}
    queue = [rule_id for rule_id, reason in reasons.items() if reason == APPLIES]
    while queue:
        source_id = queue.pop(0)
        source = bundle.rule(source_id)
        for target_id in source.entails if source is not None else ():
            target = bundle.rule(target_id)
            if target is None:
                continue
            current = reasons.get(target_id)
            if current is not None and _is_selected(current):
                if current != APPLIES:
                    entailers[target_id].append(source_id)
                continue
            blocked = _filter(target, usage.get(target_id), at)
            if blocked is not None:
                reasons.setdefault(target_id, blocked)
                continue
            reasons[target_id] = f"entailed_by:{source_id}"
            entailers[target_id] = [source_id]
            queue.append(target_id)
    return entailers


def _exclude(rules: Mapping[str, Rule], reasons: dict[str, str], scores: Mapping[str, float]) -> None:
    """Keep selected rules by priority, score, id; drop each that conflicts with one already kept."""
    selected = sorted((rule_id for rule_id in rules if _is_selected(reasons[rule_id])),
                      key=lambda rule_id: (-rules[rule_id].priority, -scores.get(rule_id, 0.0), rule_id))
    kept: list[Rule] = []
    for rule_id in selected:
        rule = rules[rule_id]
        winner = next((other for other in kept if rule_id in other.excludes or other.id in rule.excludes),
                      None)
        if winner is not None:
            reasons[rule_id] = f"excluded_by:{winner.id}"
        else:
            kept.append(rule)


def _drop_unsupported(rules: Mapping[str, Rule], reasons: dict[str, str],
                      entailers: Mapping[str, list[str]]) -> None:
    changed = True
    while changed:
        changed = False
        for rule_id, rule in rules.items():
            if not _is_selected(reasons[rule_id]):
                continue
            absent = next((dep for dep in rule.depends_on if not _is_selected(reasons.get(dep, ""))), None)
            if absent is not None:
                reasons[rule_id], changed = f"missing_dependency:{absent}", True
            elif reasons[rule_id] != APPLIES and not any(
                    _is_selected(reasons.get(source, "")) for source in entailers.get(rule_id, ())):
                reasons[rule_id], changed = f"entailer_dropped:{entailers[rule_id][0]}", True
