"""The coarse index of large agents finds what exact scoring finds, touching a fraction of the rules."""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from chalicelib.domain.bundle import AgentBundle, AgentInfo, PublishedBundle
from chalicelib.domain.config import RetrievalConfig
from chalicelib.domain.rule import Rule
from chalicelib.focal.coarse import COARSE_MIN_ROWS, build_coarse
from chalicelib.focal.index import build_index, embed_bundle
from chalicelib.focal.retrieve import retrieve
from chalicelib.providers.embeddings import OfflineEmbedder

TOPICS = ["refund", "delivery date", "password reset", "invoice copy", "subscription plan", "damaged parcel",
          "loyalty points", "missing item", "shipping address", "discount code", "warranty claim",
          "two-factor login", "gift card balance", "store hours", "price match", "late payment fee",
          "size exchange", "account deletion", "newsletter", "roaming charges", "data allowance", "sim card",
          "contract end", "router reset", "coverage map", "porting my number", "bill dispute", "student offer"]
MOODS = ["asks about", "is angry about", "wants to change", "cannot find", "is confused by", "requests",
         "wants to cancel", "reports a problem with", "praises", "wants a refund for"]
EXTRAS = ["", "for an order from last week", "on a business account", "while abroad", "for the third time",
          "before checkout", "after the trial", "for a family member", "in the mobile app", "by phone"]


def big_agent(size: int) -> PublishedBundle:
    rng = random.Random(11)
    rules = [Rule(id=f"r{i:05d}", condition=f"the user {rng.choice(MOODS)} {rng.choice(TOPICS)} {rng.choice(EXTRAS)}",
                  action="help") for i in range(size)]
    bundle = AgentBundle(agent=AgentInfo(name="big"), rules=rules)
    embedder = OfflineEmbedder()
    return PublishedBundle(tenant_id="t", agent_id="big", version=1, bundle=bundle, published_at="",
                           embedding_model=embedder.model, vectors=embed_bundle(bundle, embedder))


def test_small_agents_keep_exact_scoring() -> None:
    vectors = np.eye(8, dtype=np.float32)
    assert build_coarse(vectors) is None


def test_the_coarse_index_retrieves_what_exact_scoring_retrieves() -> None:
    # GIVEN an agent big enough for the coarse index, and the same index without it
    embedder = OfflineEmbedder()
    index = build_index(big_agent(COARSE_MIN_ROWS + 1000), embedder)
    assert index.rule_coarse is not None
    exact = dataclasses.replace(index, rule_coarse=None)
    config = RetrievalConfig(max_rules=10, min_score=0.0)
    messages = ["I want my money back for the damaged parcel", "how do I reset my password",
                "my bill is wrong, I dispute it", "what is my gift card balance", "can I keep my number",
                "the router keeps dropping, I reset it twice", "is there a student offer on plans",
                "why was I charged a late payment fee"]
    found = 0
    for message in messages:
        vector = embedder.embed([message])[0]
        # WHEN both retrieve for the same message
        fast = retrieve(index, message, vector, state=None, config=config)
        slow = retrieve(exact, message, vector, state=None, config=config)
        # THEN the best rule is the same, and most of the top ten are
        assert fast.rules[0].item_id == slow.rules[0].item_id
        found += len({item.item_id for item in fast.rules} & {item.item_id for item in slow.rules})
    assert found >= 0.8 * 10 * len(messages)


def test_the_coarse_index_scores_only_a_fraction_of_the_rules_exactly() -> None:
    index = build_index(big_agent(COARSE_MIN_ROWS + 1000), OfflineEmbedder())
    assert index.rule_coarse is not None
    query = index.rule_vectors[0]
    scored = index.rule_coarse.similarity(query, index.rule_vectors.shape[0])
    assert 0 < np.count_nonzero(scored) < 0.3 * len(scored)
    assert scored[0] == np.float32(query @ query)  # a rule of its own group is scored exactly
