"""Conversation test files: the schema (pydantic) and the loader that says what is wrong and where.

```yaml
bundle: ../../retail-returns.yaml     # the agent bundle, relative to this file (in-process runs)
agent: retail-returns                  # the agent id on a server (runs with --url); default: bundle stem
conversations:
  - name: a delivered order reaches the reason step
    channel: api                       # optional
    tools:                             # offline stand-in for the tool endpoints: tool id -> its answer
      lookup_order: {status: delivered, total: 120, within_return_window: true}
    turns:
      - user: I want to return my jacket, order NW-204518, ana@example.com
        model:                         # optional: script this turn's LLM calls (an inline cassette)
          - {text: "I guarantee a refund of $900"}     # task defaults to generation
          - {task: judge, text: '{"violations": []}'}
        expect:
          reply: {contains: [refund], not_contains: [guarantee], matches: "NW-\\d+"}
          rules: [refund_cap]          # these rules are among those applied
          scenario: return_request/collect_reason     # or none
          fallback: false
          regeneration_attempts: 0
          llm_calls: 2
          handoff: false
          fields: {order_status: delivered}            # stored interlocutor values
          tools: {lookup_order: ok}                    # tool call statuses
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.cli.bundle_files import BundleSource, load_yaml, record_places
from chalicelib.cli.common import USAGE_ERROR, CliFailure
from chalicelib.domain.channel import ChannelName
from chalicelib.providers.llm import Task
from chalicelib.providers.replay import Exchange, RecordedResponse

CASSETTE_SUFFIX = ".cassette.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class ReplyExpectation(_Strict):
    contains: list[str] = Field(default_factory=list)  # each, case-insensitive
    not_contains: list[str] = Field(default_factory=list)  # none of them, case-insensitive
    matches: str | None = None  # a regular expression searched anywhere (re.search)

    _lists = field_validator("contains", "not_contains", mode="before")(_as_list)


class Expectation(_Strict):
    reply: ReplyExpectation | None = None
    rules: list[str] | None = None  # applied (a subset of the outcome's rules)
    not_rules: list[str] | None = None  # not applied
    scenario: str | None = Field(default=None, description="`scenario/step`, or `none`")
    fallback: bool | None = None
    regeneration_attempts: int | None = Field(default=None, ge=0)
    llm_calls: int | None = Field(default=None, ge=0)
    handoff: bool | None = None
    fields: dict[str, Any] | None = None
    tools: dict[str, str] | None = None  # tool id -> status (ok, error, skipped_guard, ...)

    _rule_lists = field_validator("rules", "not_rules", mode="before")(_as_list)

    @field_validator("scenario")
    @classmethod
    def _scenario_shape(cls, value: str | None) -> str | None:
        if value is not None and value != "none" and value.count("/") != 1:
            raise ValueError("write `scenario_id/step_id`, or `none`")
        return value


class ScriptedCall(_Strict):
    """One scripted LLM call: its answer text, or an error the provider raises."""

    task: Task = "generation"
    text: str | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> ScriptedCall:
        if (self.text is None) == (self.error is None):
            raise ValueError("a scripted call has exactly one of `text` or `error`")
        return self

    def exchange(self) -> Exchange:
        if self.text is not None:
            return Exchange(
                task=self.task,
                request_summary="scripted in the test file",
                response=RecordedResponse(text=self.text),
            )
        return Exchange(task=self.task, request_summary="scripted in the test file", error=self.error)


class Turn(_Strict):
    user: str = Field(min_length=1)
    model: list[ScriptedCall] = Field(default_factory=list)
    expect: Expectation = Field(default_factory=Expectation)


class Conversation(_Strict):
    name: str = Field(min_length=1)
    user_id: str = "ruche-test-user"
    channel: ChannelName = ChannelName.API
    tools: dict[str, dict[str, Any]] = Field(default_factory=dict)
    turns: list[Turn] = Field(min_length=1)

    @property
    def needs_in_process(self) -> bool:
        """Stubbed tools and scripted models exist only in the in-process runner."""
        return bool(self.tools) or any(turn.model for turn in self.turns)


class TestFile(_Strict):
    __test__ = False  # not a pytest class

    bundle: str | None = None
    agent: str | None = None
    conversations: list[Conversation] = Field(min_length=1)


class LoadedTestFile:
    """A parsed test file, where it lives, and the places of its items (for messages)."""

    __test__ = False

    def __init__(self, path: Path, spec: TestFile, source: BundleSource) -> None:
        self.path, self.spec, self.source = path, spec, source

    @property
    def bundle_path(self) -> Path | None:
        return (self.path.parent / self.spec.bundle).resolve() if self.spec.bundle else None

    @property
    def agent_id(self) -> str | None:
        if self.spec.agent:
            return self.spec.agent
        return self.bundle_path.stem if self.bundle_path else None

    @property
    def cassette_path(self) -> Path:
        """Recorded LLM exchanges of this file live beside it: tests/x.yaml -> tests/x.cassette.yaml."""
        return self.path.with_name(self.path.name.rsplit(".", 1)[0] + CASSETTE_SUFFIX)

    def line_of(self, path: str) -> int:
        return self.source.where(path)[1]


def load_test_file(path: Path) -> LoadedTestFile:
    """Parse and validate one test file. Raises CliFailure (exit 2) with `file:line: item: problem`."""
    document, node = load_yaml(path, exit_code=USAGE_ERROR)
    source = BundleSource(document=document if isinstance(document, dict) else {}, origin=str(path))
    source.places[()] = (str(path), 1)
    record_places(source.places, node, (), str(path))
    if not isinstance(document, dict):
        raise CliFailure(f"{path}:1: a test file is a mapping with `conversations` (and `bundle` or `agent`)")
    try:
        spec = TestFile.model_validate(document)
    except ValidationError as exc:
        problems = [
            (_where(error["loc"]), error["msg"]) for error in exc.errors(include_input=False, include_url=False)
        ]
        lines = [source.describe(item_path, message) for item_path, message in problems]
        raise CliFailure("malformed test file:\n" + "\n".join(lines)) from None
    return LoadedTestFile(path, spec, source)


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
