"""Cassettes: recorded LLM exchanges, served in order by the `replay` provider (DESIGN.md §5).

A cassette is a plain YAML file, recorded from a real provider by RecordingLlm or written by hand
to script a model that misbehaves on purpose:

    exchanges:
      - task: generation
        request_summary: "generation: what are your opening hours?"   # informative only
        response: {text: "We open at 9.", prompt_tokens: 812, completion_tokens: 6}
      - task: judge
        error: "the judge timed out"      # this call raises ProviderError

Exchanges are served strictly in order; an exchange whose task differs from the request's, or a
call after the last exchange, raises ProviderError with the position, so a test that makes an
unexpected call fails loudly. Missing token counts are estimated as characters / 4.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.llm import (
    LlmProvider,
    LlmRequest,
    LlmResponse,
    ProviderError,
    Task,
    estimate_tokens,
)

SUMMARY_CHARS = 200


class RecordedResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    model: str | None = None


class Exchange(BaseModel):
    """One call: what was asked (summarised) and either the answer or the error it raised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task | None = None  # None: any task (handy in hand-written cassettes)
    request_summary: str = ""
    response: RecordedResponse | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> Exchange:
        if (self.response is None) == (self.error is None):
            raise ValueError("an exchange has exactly one of `response` or `error`")
        return self


class Cassette(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    exchanges: list[Exchange] = Field(default_factory=list)


def summarize(request: LlmRequest) -> str:
    """The task and the first 200 characters of the last user message. Recorded in cassettes."""
    last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    return f"{request.task}: {last_user[:SUMMARY_CHARS]}"


def load_cassette(path: str | Path) -> Cassette:
    """Read a cassette file (a mapping with `exchanges`, or a bare list). Raises InvalidInput."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput.at(str(path), f"cannot read the cassette: {type(exc).__name__}") from exc
    if raw is None:
        raw = {}
    if isinstance(raw, list):
        raw = {"exchanges": raw}
    try:
        return Cassette.model_validate(raw)
    except ValidationError as exc:
        problems = [(f"{path}:" + ".".join(str(part) for part in error["loc"]), error["msg"])
                    for error in exc.errors(include_input=False)]
        raise InvalidInput.many(problems) from exc


class ReplayLlm:
    """An LlmProvider that serves a cassette's exchanges in order. Thread-safe."""

    name = "replay"

    def __init__(self, exchanges: Sequence[Exchange], *, source: str = "cassette") -> None:
        self._exchanges = tuple(exchanges)
        self._source = source
        self._next = 0
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayLlm:
        """Raises InvalidInput when the file is missing or malformed."""
        return cls(load_cassette(path).exchanges, source=str(path))

    @property
    def remaining(self) -> int:
        """Exchanges not served yet (a test can assert the script was played to the end)."""
        return len(self._exchanges) - self._next

    def complete(self, request: LlmRequest) -> LlmResponse:
        """The next exchange's response. Raises ProviderError for a scripted error, a task
        mismatch, or an exhausted cassette."""
        with self._lock:
            position = self._next
            if position >= len(self._exchanges):
                raise ProviderError(
                    f"replay provider: {self._source} is exhausted: it holds {len(self._exchanges)} "
                    f"exchanges and call {position + 1} ({request.task}) asked for one more",
                    provider=self.name)
            exchange = self._exchanges[position]
            self._next += 1
        where = f"{self._source} exchange {position + 1}"
        if exchange.task is not None and exchange.task != request.task:
            raise ProviderError(f"replay provider: {where} is for task {exchange.task!r}, "
                                f"but the engine asked for {request.task!r}", provider=self.name)
        if exchange.response is None:
            raise ProviderError(f"replay provider: {where} scripts an error: {exchange.error}",
                                provider=self.name)
        answer = exchange.response
        prompt = "".join(message.content for message in request.messages)
        prompt_tokens, completion_tokens = answer.prompt_tokens, answer.completion_tokens
        return LlmResponse(
            text=answer.text,
            model=answer.model or request.model or "replay",
            prompt_tokens=estimate_tokens(prompt) if prompt_tokens is None else prompt_tokens,
            completion_tokens=estimate_tokens(answer.text) if completion_tokens is None
            else completion_tokens,
        )


class RecordingLlm:
    """Wraps a real provider and appends every exchange (answer or error) to a cassette file.

    The file is rewritten after each call, so a crash loses nothing already recorded.
    """

    def __init__(self, inner: LlmProvider, path: str | Path) -> None:
        self._inner = inner
        self._path = Path(path)
        self.name = inner.name
        self._exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def complete(self, request: LlmRequest) -> LlmResponse:
        """The inner provider's answer, recorded. Its ProviderError is recorded, then re-raised."""
        summary = summarize(request)
        try:
            response = self._inner.complete(request)
        except ProviderError as exc:
            self._record(Exchange(task=request.task, request_summary=summary, error=exc.message))
            raise
        self._record(Exchange(
            task=request.task, request_summary=summary,
            response=RecordedResponse(text=response.text, prompt_tokens=response.prompt_tokens,
                                      completion_tokens=response.completion_tokens, model=response.model),
        ))
        return response

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)
            document = {"exchanges": [item.model_dump(exclude_none=True) for item in self._exchanges]}
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
                                  encoding="utf-8")
