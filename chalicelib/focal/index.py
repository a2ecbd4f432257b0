"""The retrieval index of one published agent: rule and scenario vectors, scope arrays, lexical postings.

Built once per container per published version (held by the LoadedAgent, focal/agent.py), so a
turn only does numpy work.
Vectors come from the publish path (`embed_bundle`); the embedder is called here only for items
that have none (or when the embedding model changed), never for the turn's message.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
from aws_lambda_powertools import Logger

from chalicelib.domain.bundle import AgentBundle, PublishedBundle
from chalicelib.domain.rule import Rule, Scope
from chalicelib.focal.coarse import CoarseIndex, build_coarse
from chalicelib.providers.llm import EmbeddingProvider

if TYPE_CHECKING:
    from chalicelib.providers.llm import Vectors

logger = Logger(child=True)

SCOPE_GLOBAL, SCOPE_SCENARIO, SCOPE_STEP = 0, 1, 2
NO_CODE = -1
# BM25 constants (Robertson/Sparck Jones defaults).
_K1, _B = 1.2, 0.75

# Light on purpose: conditions are short; idf already discounts what every rule says.
_STOPWORD_TEXT = (
    "a an the and or but if then of to in on at by for with from about into as is are was were be been "
    "being am do does did has have had i me my we our you your he she it its they them their this that "
    "these those there here what which who whom when where how why so than too very can could would "
    "should will shall may might must just also any some all no not only own same such more most other "
    "user customer asks ask asking wants want wanting needs need like please would"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[^\W_]+")


def _stem(word: str) -> str:
    """Strip the commonest English suffixes so "refunds"/"refunded"/"refunding" meet "refund"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased, punctuation-stripped, stopword-free, lightly stemmed words, in order."""
    return [_stem(word) for word in _WORD.findall(text.lower())
            if word not in STOPWORDS and (len(word) > 1 or word.isdigit())]  # drops the s of "where's"


ArrayT = TypeVar("ArrayT", bound=npt.NDArray[np.generic])
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class LexicalIndex:
    """token -> (positions, weights). A document's weights sum to 1, so a score is in [0, 1].

    Each weight is the token's BM25 contribution to its document divided by the document's
    own maximum BM25 score: the lexical score of a message is the idf-weighted share of the
    condition the message covers. It never depends on the other documents' scores (no min-max
    per pool), and a message sharing no token scores exactly 0.
    """

    postings: Mapping[str, tuple[IntArray, FloatArray]]
    idf: Mapping[str, float]
    size: int

    def score(self, query: Sequence[str]) -> FloatArray:
        scores = np.zeros(self.size, dtype=np.float32)
        for token in set(query):
            posting = self.postings.get(token)
            if posting is not None:
                scores[posting[0]] += posting[1]  # positions are unique within one posting
        return np.minimum(scores, 1.0, out=scores)


def build_lexical(texts: Sequence[str]) -> LexicalIndex:
    counts = [Counter(tokens(text)) for text in texts]
    size = len(counts)
    frequency: Counter[str] = Counter(token for count in counts for token in count)
    idf = {token: math.log(1.0 + (size - n + 0.5) / (n + 0.5)) for token, n in frequency.items()}
    average = (sum(sum(count.values()) for count in counts) / size) if size else 0.0
    raw: dict[str, tuple[list[int], list[float]]] = {}
    for position, count in enumerate(counts):
        length = sum(count.values())
        norm = _K1 * (1 - _B + _B * length / average) if average else _K1
        weights = {token: idf[token] * tf * (_K1 + 1) / (tf + norm) for token, tf in count.items()}
        total = sum(weights.values())
        for token, weight in weights.items():
            entry = raw.setdefault(token, ([], []))
            entry[0].append(position)
            entry[1].append(weight / total)
    postings = {
        token: (_frozen(np.asarray(positions, dtype=np.int32)),
                _frozen(np.asarray(weights, dtype=np.float32)))
        for token, (positions, weights) in raw.items()
    }
    return LexicalIndex(postings=postings, idf=idf, size=size)


@dataclass(frozen=True, slots=True)
class Phrases:
    """The `examples` of rules or scenarios: each phrase scores for its owner (row of the owner arrays).

    An item scores the best of its condition and its examples, so a bundle without examples
    retrieves exactly as before, and an example never dilutes the condition's own score.
    """

    owners: IntArray  # phrase i belongs to item owners[i]
    vectors: Vectors
    lexical: LexicalIndex

    @property
    def size(self) -> int:
        return int(self.owners.shape[0])


@dataclass(frozen=True, slots=True)
class AgentIndex:
    """Everything retrieval needs for one published version, as read-only numpy arrays."""

    tenant_id: str
    agent_id: str
    version: int
    embedding_model: str
    rule_ids: tuple[str, ...]  # bundle order; position i is row i of every rule array
    rule_positions: Mapping[str, int]
    rule_vectors: Vectors  # (n_rules, dims), L2-normalised condition vectors
    rule_scope: npt.NDArray[np.int8]  # SCOPE_GLOBAL / SCOPE_SCENARIO / SCOPE_STEP
    rule_scenario: IntArray  # scenario code, or NO_CODE for global rules
    rule_step: IntArray  # (scenario, step) code, or NO_CODE unless step-scoped
    rule_enabled: npt.NDArray[np.bool_]
    rule_rank: IntArray  # rank of each id in sorted order: the deterministic tie-break
    rule_lexical: LexicalIndex
    scenario_ids: tuple[str, ...]
    scenario_vectors: Vectors
    scenario_rank: IntArray
    scenario_lexical: LexicalIndex
    scenario_codes: Mapping[str, int]
    step_codes: Mapping[tuple[str, str], int]
    rule_coarse: CoarseIndex | None = None  # large agents only: see focal/coarse.py
    rule_examples: Phrases | None = None  # None when no rule has examples
    scenario_examples: Phrases | None = None

    @property
    def dimensions(self) -> int:
        return int(self.rule_vectors.shape[1])

    def scope_mask(self, scenario_id: str | None, step_id: str | None) -> npt.NDArray[np.bool_]:
        """Rules that may apply in this scope: enabled and global, or scoped to the active scenario/step."""
        in_scope = self.rule_scope == SCOPE_GLOBAL
        scenario_code = self.scenario_codes.get(scenario_id or "", None)
        if scenario_code is not None:
            in_scope |= (self.rule_scope == SCOPE_SCENARIO) & (self.rule_scenario == scenario_code)
            step_code = self.step_codes.get((scenario_id or "", step_id or ""), None)
            if step_code is not None:
                in_scope |= (self.rule_scope == SCOPE_STEP) & (self.rule_step == step_code)
        mask: npt.NDArray[np.bool_] = in_scope & self.rule_enabled
        return mask


def embed_bundle(bundle: AgentBundle, embedder: EmbeddingProvider) -> dict[str, list[float]]:
    """The publish-time vectors: "rule:<id>" for each rule condition, "scenario:<id>" for each scenario,
    "rule:<id>#<n>" / "scenario:<id>#<n>" for their examples."""
    wanted = _texts(bundle)
    keys, texts = list(wanted), list(wanted.values())
    if not texts:
        return {}
    matrix = np.asarray(embedder.embed(texts), dtype=np.float32)
    return {key: [float(value) for value in row] for key, row in zip(keys, matrix, strict=True)}


def build_index(published: PublishedBundle, embedder: EmbeddingProvider) -> AgentIndex:
    """Build the index of one version. Embeds only the items whose publish-time vector is missing or unusable."""
    bundle = published.bundle
    rules = bundle.rules
    scenario_codes = {scenario.id: code for code, scenario in enumerate(bundle.scenarios)}
    pairs = [(scenario.id, step.id) for scenario in bundle.scenarios for step in scenario.steps]
    step_codes = {pair: code for code, pair in enumerate(pairs)}
    vectors = _vectors_of(published, embedder)
    rule_vectors = _matrix([vectors[f"rule:{rule.id}"] for rule in rules], embedder.dimensions)
    return AgentIndex(
        tenant_id=published.tenant_id, agent_id=published.agent_id, version=published.version,
        embedding_model=embedder.model,
        rule_ids=tuple(rule.id for rule in rules),
        rule_positions={rule.id: position for position, rule in enumerate(rules)},
        rule_vectors=rule_vectors,
        rule_coarse=build_coarse(rule_vectors),
        rule_scope=_frozen(np.asarray([_scope_code(rule) for rule in rules], dtype=np.int8)),
        rule_scenario=_frozen(np.asarray(
            [scenario_codes.get(rule.scenario or "", NO_CODE) if rule.scope is not Scope.GLOBAL else NO_CODE
             for rule in rules], dtype=np.int32)),
        rule_step=_frozen(np.asarray(
            [step_codes.get((rule.scenario or "", rule.step or ""), NO_CODE) if rule.scope is Scope.STEP
             else NO_CODE for rule in rules], dtype=np.int32)),
        rule_enabled=_frozen(np.asarray([rule.enabled for rule in rules], dtype=np.bool_)),
        rule_rank=_ranks([rule.id for rule in rules]),
        rule_lexical=build_lexical([rule.condition for rule in rules]),
        scenario_ids=tuple(scenario.id for scenario in bundle.scenarios),
        scenario_vectors=_matrix([vectors[f"scenario:{item.id}"] for item in bundle.scenarios],
                                 embedder.dimensions),
        scenario_rank=_ranks([scenario.id for scenario in bundle.scenarios]),
        scenario_lexical=build_lexical([scenario.condition for scenario in bundle.scenarios]),
        scenario_codes=scenario_codes,
        step_codes=step_codes,
        rule_examples=_phrases("rule", [rule.examples for rule in rules], [rule.id for rule in rules],
                               vectors, embedder.dimensions),
        scenario_examples=_phrases("scenario", [item.examples for item in bundle.scenarios],
                                   [item.id for item in bundle.scenarios], vectors, embedder.dimensions),
    )


def _texts(bundle: AgentBundle) -> dict[str, str]:
    """Vector key -> text, for every condition and example of the bundle."""
    wanted = {f"rule:{rule.id}": rule.condition for rule in bundle.rules}
    wanted.update({f"scenario:{item.id}": item.condition for item in bundle.scenarios})
    for prefix, items in (("rule", bundle.rules), ("scenario", bundle.scenarios)):
        for item in items:
            wanted.update({f"{prefix}:{item.id}#{number}": text for number, text in enumerate(item.examples)})
    return wanted


def _phrases(prefix: str, examples: Sequence[Sequence[str]], ids: Sequence[str],
             vectors: Mapping[str, Sequence[float]], dimensions: int) -> Phrases | None:
    owned = [(owner, f"{prefix}:{ids[owner]}#{number}", text) for owner, texts in enumerate(examples)
             for number, text in enumerate(texts)]
    if not owned:
        return None
    return Phrases(owners=_frozen(np.asarray([owner for owner, _, _ in owned], dtype=np.int32)),
                   vectors=_matrix([vectors[key] for _, key, _ in owned], dimensions),
                   lexical=build_lexical([text for _, _, text in owned]))


def _vectors_of(published: PublishedBundle, embedder: EmbeddingProvider) -> dict[str, Sequence[float]]:
    bundle = published.bundle
    wanted = _texts(bundle)
    # Vectors of another model (or size) are not comparable with the turn's query vector.
    same_model = not published.embedding_model or published.embedding_model == embedder.model
    found: dict[str, Sequence[float]] = {
        key: vector for key, vector in published.vectors.items()
        if same_model and key in wanted and len(vector) == embedder.dimensions
    }
    missing = [key for key in wanted if key not in found]
    if missing:
        logger.warning("embedding items without a publish-time vector", extra={
            "tenant_id": published.tenant_id, "agent_id": published.agent_id,
            "version": published.version, "missing": len(missing)})
        matrix = np.asarray(embedder.embed([wanted[key] for key in missing]), dtype=np.float32)
        found.update({key: row for key, row in zip(missing, matrix, strict=True)})
    return found


def _matrix(rows: Sequence[Sequence[float]], dimensions: int) -> Vectors:
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), dimensions)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)  # re-normalise: stored lists may drift
    return _frozen(matrix)


def _scope_code(rule: Rule) -> int:
    return {Scope.GLOBAL: SCOPE_GLOBAL, Scope.SCENARIO: SCOPE_SCENARIO, Scope.STEP: SCOPE_STEP}[rule.scope]


def _ranks(ids: Sequence[str]) -> IntArray:
    ranks = np.empty(len(ids), dtype=np.int32)
    ranks[np.argsort(np.asarray(ids, dtype=object), kind="stable")] = np.arange(len(ids), dtype=np.int32)
    return _frozen(ranks)


def _frozen(array: ArrayT) -> ArrayT:
    """Shared across warm turns: make accidental in-place edits raise instead of corrupting it."""
    array.flags.writeable = False
    return array
