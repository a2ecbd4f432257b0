"""Hybrid retrieval: scope, enabled, lexical without pool bonuses, clamped cosine, stable order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from chalicelib.domain.config import RetrievalConfig
from chalicelib.domain.rule import Rule
from chalicelib.domain.session import ScenarioState
from chalicelib.focal.index import AgentIndex, build_index
from chalicelib.focal.retrieve import retrieve
from chalicelib.focal.types import Retrieved
from tests.focal.factories import (
    RecordingEmbedder,
    a_bundle,
    a_published,
    a_rule,
    a_scenario,
    a_step,
    an_embedder,
)

if TYPE_CHECKING:
    from chalicelib.providers.llm import Vectors

EVERYTHING = RetrievalConfig(min_score=0.0, max_rules=100)


def index_of(rules: list[Rule], **bundle: object) -> tuple[AgentIndex, RecordingEmbedder]:
    embedder = an_embedder()
    published = a_published(a_bundle(rules=rules, **bundle), embedder=embedder)  # type: ignore[arg-type]
    return build_index(published, embedder), embedder


def ask(
    index: AgentIndex,
    embedder: RecordingEmbedder,
    message: str,
    *,
    scenario: str | None = None,
    step: str | None = None,
    config: RetrievalConfig = EVERYTHING,
    vector: Vectors | None = None,
) -> Retrieved:
    query = embedder.embed([message])[0] if vector is None else vector
    state = ScenarioState(scenario_id=scenario, step_id=step) if scenario and step else None
    return retrieve(index, message, query, state=state, config=config)


def ids(found: Retrieved) -> list[str]:
    return [item.item_id for item in found.rules]


def test_a_step_rule_is_retrieved_only_in_its_step_of_its_scenario() -> None:
    scenarios = [
        a_scenario("returns", steps=[a_step("s1"), a_step("s2")]),
        a_scenario("billing", "the user has a billing question", steps=[a_step("s2")]),
    ]
    index, embedder = index_of(
        [a_rule("label", "the user needs a return label", scenario="returns", step="s2")], scenarios=scenarios
    )
    message = "I need a return label"
    assert ids(ask(index, embedder, message, scenario="returns", step="s2")) == ["label"]
    assert ids(ask(index, embedder, message, scenario="returns", step="s1")) == []
    assert ids(ask(index, embedder, message, scenario="billing", step="s2")) == []
    assert ids(ask(index, embedder, message)) == []


def test_a_scenario_rule_is_retrieved_only_while_its_scenario_is_active() -> None:
    index, embedder = index_of(
        [a_rule("r", "the user asks about the return window", scenario="returns")],
        scenarios=[a_scenario("returns")],
    )
    assert ids(ask(index, embedder, "what is the return window", scenario="returns", step="s1")) == ["r"]
    assert ids(ask(index, embedder, "what is the return window")) == []


def test_a_disabled_rule_is_never_retrieved_even_on_an_exact_match() -> None:
    index, embedder = index_of([a_rule("off", "the user asks for a refund", enabled=False), a_rule("on")])
    assert ids(ask(index, embedder, "the user asks for a refund")) == ["on"]


def test_a_message_sharing_no_word_gets_no_lexical_score_even_when_every_rule_ties() -> None:
    # The reference normalised BM25 min-max per pool: all-equal scores became 1.0 for every rule.
    index, embedder = index_of(
        [
            a_rule("r1", "refund for a damaged parcel"),
            a_rule("r2", "refund for a damaged parcel"),
            a_rule("r3", "opening hours of the store"),
        ]
    )
    found = ask(index, embedder, "xylophone quartz", vector=np.zeros(embedder.dimensions, dtype=np.float32))
    assert [item.lexical for item in found.rules] == [0.0, 0.0, 0.0]
    assert [item.score for item in found.rules] == [0.0, 0.0, 0.0]
    assert ask(index, embedder, "xylophone quartz", config=RetrievalConfig()).rules == ()


def test_a_rule_scores_the_same_whichever_other_rules_are_in_scope() -> None:
    # The reference normalised per scope pool, so a rule's score moved when a scenario started.
    index, embedder = index_of(
        [
            a_rule("r1", "refund for a damaged parcel"),
            a_rule("r2", "refund for a damaged parcel", scenario="returns"),
            a_rule("r3", "the parcel is lost", scenario="returns"),
        ],
        scenarios=[a_scenario("returns")],
    )
    outside = ask(index, embedder, "my parcel came damaged").rules
    inside = ask(index, embedder, "my parcel came damaged", scenario="returns", step="s1").rules
    assert [item.item_id for item in outside] == ["r1"]
    assert next(item for item in inside if item.item_id == "r1") == outside[0]


def test_a_paraphrase_ranks_above_unrelated_rules() -> None:
    index, embedder = index_of(
        [
            a_rule("hours", "the user asks when the store opens"),
            a_rule("refund", "the user wants their money back for a damaged order"),
            a_rule("password", "the user cannot log in because they forgot the password"),
        ]
    )
    found = ask(index, embedder, "my order arrived damaged, I want a refund of my money")
    assert ids(found)[0] == "refund"
    assert found.rules[0].score > found.rules[1].score
    assert ids(ask(index, embedder, "I forgot my password and cannot log in"))[0] == "password"


def test_scores_are_combined_by_the_lexical_weight_and_stay_in_zero_to_one() -> None:
    index, embedder = index_of([a_rule("r1", "refund for a damaged parcel")])
    for weight in (0.0, 0.3, 1.0):
        config = RetrievalConfig(min_score=0.0, lexical_weight=weight)
        item = ask(index, embedder, "refund my damaged parcel", config=config).rules[0]
        assert item.score == pytest.approx(weight * item.lexical + (1 - weight) * item.vector, abs=1e-6)
        assert 0.0 <= item.score <= 1.0


def test_a_negative_cosine_counts_as_no_similarity() -> None:
    index, embedder = index_of([a_rule("r1", "refund for a damaged parcel")])
    opposite = -np.asarray(index.rule_vectors[0])
    item = ask(index, embedder, "zzz", vector=opposite).rules[0]
    assert item.vector == 0.0


def test_a_query_vector_of_another_size_or_all_zeros_adds_nothing() -> None:
    index, embedder = index_of([a_rule("r1", "refund for a damaged parcel")])
    for vector in (np.ones(7, dtype=np.float32), np.zeros((1, embedder.dimensions), dtype=np.float32)):
        item = ask(index, embedder, "refund", vector=vector).rules[0]
        assert item.vector == 0.0
        assert item.lexical > 0.0


def test_equal_scores_are_ordered_by_id_and_the_order_is_stable() -> None:
    index, embedder = index_of(
        [a_rule(rule_id, "refund for a damaged parcel") for rule_id in ("c", "a", "b")]
    )
    first = ask(index, embedder, "refund for a damaged parcel")
    assert ids(first) == ["a", "b", "c"]
    assert all(ask(index, embedder, "refund for a damaged parcel") == first for _ in range(3))


def test_at_most_max_rules_are_kept_best_first_and_none_below_min_score() -> None:
    rules = [a_rule(f"r{i:02d}", f"refund for a damaged parcel number {i}") for i in range(30)]
    rules.append(a_rule("exact", "refund damaged parcel"))
    index, embedder = index_of(rules)
    found = ask(index, embedder, "refund damaged parcel", config=RetrievalConfig(max_rules=5, min_score=0.2))
    assert len(found.rules) == 5
    assert found.rules[0].item_id == "exact"
    scores = [item.score for item in found.rules]
    assert scores == sorted(scores, reverse=True)
    strict = ask(index, embedder, "refund damaged parcel", config=RetrievalConfig(min_score=0.99))
    assert all(item.score >= 0.99 for item in strict.rules)


def test_scenarios_are_scored_best_first_whatever_the_scope() -> None:
    scenarios = [
        a_scenario("returns", "the user wants to return an item"),
        a_scenario("billing", "the user has a question about an invoice"),
        a_scenario("login", "the user cannot sign in"),
    ]
    index, embedder = index_of([], scenarios=scenarios)
    found = ask(index, embedder, "I want to return this item", scenario="billing", step="s1")
    assert found.rules == ()
    assert found.scenarios[0].item_id == "returns"
    assert found.scenarios[0].kind == "scenario"
    assert [item.score for item in found.scenarios] == sorted(
        (item.score for item in found.scenarios), reverse=True
    )


def test_an_example_phrasing_lifts_its_rule_or_scenario_and_a_bundle_without_examples_is_unchanged() -> None:
    plain = a_rule("hours", condition="the customer asks about opening times")
    with_examples = a_rule("hours", condition="the customer asks about opening times",
                           examples=["are you around on sundays", "when can I drop by the shop"])
    scenarios = [a_scenario("returns", condition="the user wants to return an item",
                            examples=["I need to send back something I bought"]),
                 a_scenario("cancel", condition="the user wants to cancel an order")]
    index, embedder = index_of([plain])
    lifted_index, lifted_embedder = index_of([with_examples], scenarios=scenarios)

    before = ask(index, embedder, "are you around on sundays")
    after = ask(lifted_index, lifted_embedder, "are you around on sundays")
    assert after.rules[0].score > max([item.score for item in before.rules], default=0.0) + 0.3
    assert ask(lifted_index, lifted_embedder, "the customer asks about opening times").rules[0].score == \
        pytest.approx(ask(index, embedder, "the customer asks about opening times").rules[0].score)

    chosen = ask(lifted_index, lifted_embedder, "I need to send back something I bought").scenarios
    assert [item.item_id for item in chosen][:1] == ["returns"] and chosen[0].score > 0.9
