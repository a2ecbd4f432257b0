"""The loaded agent: everything a turn derives from one published bundle version, built once.

A turn's own work must grow with what retrieval returns, not with the agent (DESIGN.md §7: 5 ms
at 50,000 rules). So whatever depends only on the version is derived here, when the version is
loaded: the id lookups, the compiled hard constraints, guards and transition expressions, the
templates by scope, the fallback candidates attached to nothing, the topics, and the retrieval
index. runtime/loaded_agents.py holds these per container, in one bounded cache.

Pure but for the embedder an index may need (for items without a publish-time vector).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from chalicelib.domain.bundle import AgentBundle, PublishedBundle
from chalicelib.domain.expressions import REPLY_NAMES, Expression, ExpressionError, compile_expression
from chalicelib.domain.rule import Scope
from chalicelib.domain.template import Template
from chalicelib.focal.compose import attached_templates, topics_of
from chalicelib.focal.index import AgentIndex, build_index
from chalicelib.providers.llm import EmbeddingProvider

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class LoadedAgent:
    """One published version with what every turn of it reads. Shared by concurrent turns: read-only,
    except the retrieval index, built on first use under a lock (see `index`)."""

    published: PublishedBundle
    constraints: Mapping[str, Expression]  # rule id -> compiled hard-constraint expression
    expressions: Mapping[str, Expression | None]  # guard/transition source -> compiled; None: never holds
    topics: str  # what the agent helps with, in the tenant's words ({{ topics }})
    attached: frozenset[str]  # template ids some rule or step names
    unattached_globals: tuple[Template, ...]  # global templates attached to nothing, in bundle order
    scenario_templates: Mapping[str, tuple[Template, ...]]  # scenario id -> templates scoped to it
    step_templates: Mapping[tuple[str, str], tuple[Template, ...]]  # (scenario, step) -> scoped to it
    _index: list[AgentIndex] = field(default_factory=list, compare=False, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def bundle(self) -> AgentBundle:
        return self.published.bundle

    def index(self, embedder: EmbeddingProvider) -> AgentIndex:
        """The retrieval index for this embedder, built on first use.

        The embedder comes from the resolved config (tenant and agent layers may choose it), which
        is known only once the version is loaded, so the index cannot be built with the rest. One
        slot: an agent's embedding model changes only with its config, and the old index goes then.
        """
        with self._index_lock:
            held = self._index[0] if self._index else None
            if held is not None and (held.embedding_model, held.dimensions) == (embedder.model, embedder.dimensions):
                return held
            built = build_index(self.published, embedder)
            self._index[:] = [built]
            return built


def load_agent(published: PublishedBundle) -> LoadedAgent:
    """Derive everything version-bound from `published`. Never raises for a bundle publish accepted;
    an expression that does not compile is logged, left out of `constraints` (the check then fails
    it closed) and kept as None in `expressions` (it never holds)."""
    bundle = published.bundle
    names = {definition.name for definition in bundle.fields} | REPLY_NAMES
    _warm_lookups(bundle)
    attached = attached_templates(bundle)
    scenario_templates: dict[str, list[Template]] = {}
    step_templates: dict[tuple[str, str], list[Template]] = {}
    for template in bundle.templates:
        if template.scope is Scope.SCENARIO and template.scenario is not None:
            scenario_templates.setdefault(template.scenario, []).append(template)
        elif template.scope is Scope.STEP and template.scenario is not None and template.step is not None:
            step_templates.setdefault((template.scenario, template.step), []).append(template)
    return LoadedAgent(
        published=published,
        constraints=_compiled_constraints(bundle, names),
        expressions={source: compile_or_none(source, names) for source in _expression_sources(bundle)},
        topics=topics_of(bundle),
        attached=attached,
        unattached_globals=tuple(t for t in bundle.templates if t.scope is Scope.GLOBAL and t.id not in attached),
        scenario_templates={key: tuple(found) for key, found in scenario_templates.items()},
        step_templates={key: tuple(found) for key, found in step_templates.items()},
    )


def _warm_lookups(bundle: AgentBundle) -> None:
    """Build the bundle's id maps now, at load, rather than in the first turn that needs each."""
    bundle.rule("")
    bundle.scenario("")
    bundle.template("")
    bundle.tool("")
    bundle.field("")
    _ = bundle.always_enforced


def _compiled_constraints(bundle: AgentBundle, names: set[str]) -> dict[str, Expression]:
    compiled: dict[str, Expression] = {}
    for rule in bundle.rules:
        if rule.hard_constraint and rule.expression is not None:
            try:
                compiled[rule.id] = compile_expression(rule.expression, names)
            except ExpressionError:
                logger.error("hard constraint does not compile", extra={"rule_id": rule.id})
    return compiled


def _expression_sources(bundle: AgentBundle) -> Iterator[str]:
    yield from (tool.guard for tool in bundle.tools if tool.guard is not None)
    for scenario in bundle.scenarios:
        for step in scenario.steps:
            yield from (item.expression for item in step.transitions if item.expression is not None)


def compile_or_none(source: str, names: set[str]) -> Expression | None:
    """A guard or transition expression compiled over `names`; None (logged) when it does not compile."""
    try:
        return compile_expression(source, names)
    except ExpressionError:
        logger.error("expression does not compile; it never holds")
        return None
