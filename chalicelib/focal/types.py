"""The typed values that flow between FOCAL phases. Frozen dataclasses: a turn has a 5 ms CPU budget."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from chalicelib.domain.bundle import PublishedBundle
from chalicelib.domain.config import Config
from chalicelib.domain.interlocutor import FieldChange, InterlocutorData
from chalicelib.domain.rule import Rule
from chalicelib.domain.session import Session
from chalicelib.domain.template import Template
from chalicelib.domain.tool import Tool
from chalicelib.domain.turn import Attempt, Violation
from chalicelib.providers.llm import EmbeddingProvider, LlmProvider

if TYPE_CHECKING:  # focal/agent.py imports the phases that import these types
    from chalicelib.focal.agent import LoadedAgent


@dataclass(frozen=True, slots=True)
class TurnInput:
    message: str  # one logical turn: consecutive messages joined with newlines
    channel: str
    turn_number: int  # 1 for the first turn of a session
    now_s: float


@dataclass(frozen=True, slots=True)
class ScoredItem:
    kind: Literal["rule", "scenario"]
    item_id: str
    score: float  # combined, in [0, 1]
    lexical: float
    vector: float


@dataclass(frozen=True, slots=True)
class Retrieved:
    rules: tuple[ScoredItem, ...]  # best first; only rules in scope for this turn
    scenarios: tuple[ScoredItem, ...]


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the one understanding call (or its offline stand-in) says about the message."""

    intent: str = ""
    language: str = "en"
    values: Mapping[str, Any] = field(default_factory=dict)  # field name -> value as stated
    applicable_rules: tuple[str, ...] = ()  # retrieved candidates confirmed to apply
    scenario_signal: Literal["none", "start", "continue", "exit"] = "none"
    scenario_id: str | None = None  # the scenario to start, when the signal is "start"
    conditions_true: tuple[str, ...] = ()  # "<scenario>/<step>/<transition index>" judged true
    confirmed: bool = False  # the user said yes to what the agent asked to confirm
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class DataUpdate:
    known: Mapping[str, Any]  # every field value known this turn (persistent + session), unmasked
    changes: tuple[FieldChange, ...]  # persistent fields to write
    session_values: Mapping[str, Any]  # session-scoped fields after this turn
    accepted: tuple[str, ...] = ()  # field names stored this turn
    rejected: Mapping[str, str] = field(default_factory=dict)  # name -> reason (never the value)
    replaced: Mapping[str, Any] = field(default_factory=dict)  # name -> the value this turn superseded


@dataclass(frozen=True, slots=True)
class RuleDecision:
    rule_id: str
    selected: bool
    reason: str  # lands in the turn record: "applies", "cooldown", "max_fires", "excluded_by:r12"
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class ScenarioDecision:
    action: Literal["none", "start", "continue", "transition", "exit", "complete"]
    scenario_id: str | None = None
    step_id: str | None = None  # where the session stands after this turn
    from_step: str | None = None
    path: tuple[str, ...] = ()  # steps passed through this turn, in order
    missing_fields: tuple[str, ...] = ()  # required fields of the current step still unknown
    handoff: bool = False


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    tool_id: str
    status: Literal["ok", "error", "timeout", "skipped_guard", "awaiting_confirmation", "skipped_missing_input"]
    idempotency_key: str
    result: Mapping[str, Any] | None = None
    attempts: int = 0
    latency_ms: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True)
class ToolRequest:
    tool: Tool
    arguments: Mapping[str, Any]
    idempotency_key: str
    timeout_s: float
    retries: int
    url: str = ""  # the tool's url resolved against tools.base_url; empty: tool.url as written


class ToolRunner(Protocol):
    def __call__(self, request: ToolRequest) -> Mapping[str, Any]:
        """Call the tool once and return its JSON result. Raises TimeoutError or ToolFailed."""
        ...


class ToolFailed(Exception):
    """A tool answered with an error or could not be reached."""


@dataclass(frozen=True, slots=True)
class Plan:
    exclusive: Template | None  # when set, it is the reply and generation is skipped
    suggestions: tuple[Template, ...]  # SUGGEST templates that guide generation
    instructions: tuple[str, ...]  # actions of the selected rules, highest priority first
    step_instruction: str  # the current step's instruction, if any
    ask_fields: tuple[str, ...]  # missing required fields to ask for, in order
    confirm_tool: str | None  # an irreversible tool whose call the reply must ask to confirm
    hard_rules: tuple[Rule, ...]  # hard constraints enforced on this turn's reply
    fallbacks: tuple[Template, ...]  # FALLBACK templates in reach, most specific first
    variables: Mapping[str, Any]  # for placeholders: field values + {"tools": {id: result}}
    handoff: bool
    draft: str  # the deterministic composition of the plan (what the offline provider says), unfilled
    # Placeholder names a generated reply may have filled (plan.allowed_placeholders); None: any
    # name in `variables` (plans built by hand in tests).
    placeholders: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    reply: str  # formatted for the channel, placeholders filled
    llm_calls: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed: bool = False  # the provider failed after retries: nothing usable was generated


@dataclass(frozen=True, slots=True)
class Enforced:
    reply: str  # what is sent: a compliant draft, the fallback, or the built-in safe reply
    attempts: tuple[Attempt, ...]  # every draft checked, with its violations
    regeneration_attempts: int
    fallback_used: bool
    fallback_template_id: str | None = None
    fallback_reason: str = ""  # "violations" | "provider_error" | ""
    llm_calls: int = 0  # judge + regeneration calls made during enforcement
    prompt_tokens: int = 0
    completion_tokens: int = 0


# Regenerate a reply given the previous draft and its violations (generation with feedback).
Regenerate = Callable[[str, tuple[Violation, ...]], Draft]


@dataclass(frozen=True, slots=True)
class FocalDeps:
    llm: LlmProvider
    embedder: EmbeddingProvider
    tools: ToolRunner
    # Config for the scenario and step the turn ends in (the resolver's cached layers); None keeps
    # the context's config. Lets a step-level override govern the reply of that step.
    resolve_config: Callable[[str | None, str | None], Config] | None = None


@dataclass(frozen=True, slots=True)
class TurnContext:
    tenant_id: str
    agent_id: str
    agent: LoadedAgent  # the published version with what is derived from it, loaded once per container
    config: Config  # resolved for this turn's channel; the pipeline re-resolves per scenario step
    session: Session
    interlocutor: InterlocutorData
    turn: TurnInput
    history: tuple[tuple[str, str], ...] = ()  # recent (role, text), PII masked

    @property
    def published(self) -> PublishedBundle:
        return self.agent.published
