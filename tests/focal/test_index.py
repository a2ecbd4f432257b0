"""The retrieval index: publish-time vectors reused, scope arrays, lexical postings."""

from __future__ import annotations

import numpy as np
import pytest

from chalicelib.focal.index import build_index, build_lexical, embed_bundle, tokens
from tests.focal.factories import a_bundle, a_published, a_rule, a_scenario, a_step, an_embedder


def test_tokens_are_lower_cased_without_punctuation_stopwords_or_plural_endings() -> None:
    assert tokens("The user ASKS: where's my Refunds?! Order 7") == ["refund", "order", "7"]
    assert tokens("") == []


def test_embed_bundle_gives_one_unit_vector_per_rule_and_scenario() -> None:
    embedder = an_embedder()
    bundle = a_bundle(rules=[a_rule("r1"), a_rule("r2", "the parcel is late")], scenarios=[a_scenario("sc")])
    vectors = embed_bundle(bundle, embedder)
    assert set(vectors) == {"rule:r1", "rule:r2", "scenario:sc"}
    assert all(len(vector) == embedder.dimensions for vector in vectors.values())
    assert np.linalg.norm(vectors["rule:r2"]) == pytest.approx(1.0, abs=1e-5)
    assert len(embedder.calls) == 1  # one batch for the whole bundle


def test_an_empty_bundle_needs_no_embedding_call() -> None:
    embedder = an_embedder()
    assert embed_bundle(a_bundle(), embedder) == {}
    assert embedder.calls == []


def test_building_the_index_reuses_publish_time_vectors_and_embeds_nothing() -> None:
    bundle = a_bundle(rules=[a_rule("r1"), a_rule("r2", "the parcel is late")], scenarios=[a_scenario()])
    published = a_published(bundle, embedder=an_embedder())
    hot_path = an_embedder()
    index = build_index(published, hot_path)
    assert hot_path.calls == []
    assert index.rule_ids == ("r1", "r2")
    assert index.rule_vectors.shape == (2, hot_path.dimensions)
    assert index.scenario_vectors.shape == (1, hot_path.dimensions)


def test_only_rules_without_a_vector_are_embedded() -> None:
    bundle = a_bundle(rules=[a_rule("r1"), a_rule("r2", "the parcel is late")])
    vectors = embed_bundle(bundle, an_embedder())
    del vectors["rule:r2"]
    hot_path = an_embedder()
    build_index(a_published(bundle, vectors=vectors), hot_path)
    assert hot_path.calls == [("the parcel is late",)]


def test_vectors_of_another_embedding_model_are_recomputed() -> None:
    bundle = a_bundle(rules=[a_rule("r1")])
    published = a_published(bundle, embedder=an_embedder(dimensions=32))  # wrong size for the hot path
    hot_path = an_embedder(dimensions=128)
    index = build_index(published, hot_path)
    assert hot_path.calls == [("the user asks for a refund",)]
    assert index.rule_vectors.shape == (1, 128)


def test_scope_mask_admits_global_rules_and_only_the_active_scenario_and_step() -> None:
    scenario = a_scenario("returns", steps=[a_step("s1"), a_step("s2")])
    other = a_scenario("billing", "the user has a billing question", steps=[a_step("s1")])
    bundle = a_bundle(
        scenarios=[scenario, other],
        rules=[
            a_rule("global"),
            a_rule("in-returns", scenario="returns"),
            a_rule("in-returns-s2", scenario="returns", step="s2"),
            a_rule("in-billing-s1", scenario="billing", step="s1"),
            a_rule("off", enabled=False),
        ],
    )
    index = build_index(a_published(bundle, embedder=an_embedder()), an_embedder())

    def admitted(scenario_id: str | None, step_id: str | None) -> set[str]:
        mask = index.scope_mask(scenario_id, step_id)
        return {rule_id for rule_id, keep in zip(index.rule_ids, mask, strict=True) if keep}

    assert admitted(None, None) == {"global"}
    assert admitted("returns", "s1") == {"global", "in-returns"}
    assert admitted("returns", "s2") == {"global", "in-returns", "in-returns-s2"}
    assert admitted("billing", "s1") == {"global", "in-billing-s1"}
    assert admitted("unknown", "s1") == {"global"}


def test_index_arrays_cannot_be_changed_in_place() -> None:
    index = build_index(a_published(a_bundle(rules=[a_rule()]), embedder=an_embedder()), an_embedder())
    with pytest.raises(ValueError, match="read-only"):
        index.rule_vectors[0, 0] = 2.0
    with pytest.raises(ValueError, match="read-only"):
        index.rule_enabled[0] = False


def test_lexical_weights_of_one_condition_sum_to_one() -> None:
    lexical = build_lexical(["refund for a damaged parcel", "opening hours of the store"])
    scores = lexical.score(tokens("refund damaged parcel opening hours store"))
    assert scores.tolist() == pytest.approx([1.0, 1.0])
    assert lexical.score(tokens("nothing shared")).tolist() == [0.0, 0.0]
    assert lexical.idf["refund"] > 0


def test_tokens_meet_across_common_inflections() -> None:
    assert tokens("replies refunded refunding boxes") == tokens("reply refund refund boxe")
    assert tokens("address status") == ["address", "status"]  # -ss / -us endings are kept


def test_a_step_rule_needs_its_step_to_be_active_not_only_its_scenario() -> None:
    bundle = a_bundle(scenarios=[a_scenario("returns")], rules=[a_rule("r", scenario="returns", step="s1")])
    index = build_index(a_published(bundle, embedder=an_embedder()), an_embedder())
    assert index.scope_mask("returns", None).tolist() == [False]
    assert index.scope_mask("returns", "s1").tolist() == [True]
