"""Rule retrieval budget (DESIGN.md §7): ≤ 10 ms p50 at 10,000 rules; 10× the rules ≤ 3× the time.

Builds synthetic agents of 1,000 and 10,000 rules with varied condition texts, embeds them with
the OfflineEmbedder as publishing does, then times `retrieve` alone (the message vector is
computed once per message, outside the timing, as the pipeline does it once per turn).

    .venv/bin/python bench/retrieval.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.domain.bundle import AgentBundle, AgentInfo, PublishedBundle
from chalicelib.domain.config import RetrievalConfig
from chalicelib.domain.rule import Rule, Scope
from chalicelib.domain.scenario import Scenario, Step
from chalicelib.domain.session import ScenarioState
from chalicelib.focal.index import AgentIndex, build_index, embed_bundle
from chalicelib.focal.retrieve import retrieve
from chalicelib.providers.embeddings import OfflineEmbedder

SUBJECTS = ["the user", "the customer", "a caller", "the client", "someone", "a returning shopper"]
VERBS = [
    "asks about",
    "complains about",
    "wants to change",
    "is confused by",
    "requests",
    "mentions",
    "is angry about",
    "wants to cancel",
    "reports a problem with",
    "asks how to update",
]
OBJECTS = [
    "a refund",
    "the delivery date",
    "their password",
    "an invoice",
    "the subscription plan",
    "a damaged parcel",
    "the loyalty points",
    "a missing item",
    "the shipping address",
    "a discount code",
    "the warranty",
    "two-factor authentication",
    "an international order",
    "the mobile app",
    "a gift card balance",
    "store opening hours",
    "a price match",
    "the privacy policy",
    "a late payment fee",
    "an exchange for another size",
]
QUALIFIERS = [
    "",
    "for an order placed last week",
    "after the trial ended",
    "on a business account",
    "while travelling abroad",
    "for the third time",
    "using a voucher",
    "in French",
    "before checkout",
    "outside business hours",
]
MESSAGES = [
    "Hi, my parcel arrived damaged and I want my money back",
    "How do I change the address you ship to?",
    "I forgot my password and can't log in to the app",
    "Can I still use my discount code after checkout?",
    "what time does the store open on sundays",
    "I was charged a late fee but I paid on time, this is ridiculous",
    "please cancel my subscription plan",
    "do you match prices from other shops",
]


def synthetic_bundle(size: int, seed: int = 7) -> AgentBundle:
    rng = random.Random(seed)
    scenarios = [
        Scenario(
            id=f"sc{i}",
            condition=f"the user {rng.choice(VERBS)} {rng.choice(OBJECTS)}",
            entry_step="s1",
            steps=[Step(id="s1"), Step(id="s2")],
        )
        for i in range(20)
    ]
    rules = []
    for i in range(size):
        condition = " ".join(
            filter(
                None, [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(QUALIFIERS)]
            )
        )
        kind = rng.random()
        scope: dict[str, object] = {}
        if kind < 0.1:
            scope = {"scope": Scope.SCENARIO, "scenario": f"sc{rng.randrange(20)}"}
        elif kind < 0.2:
            scope = {
                "scope": Scope.STEP,
                "scenario": f"sc{rng.randrange(20)}",
                "step": rng.choice(["s1", "s2"]),
            }
        rules.append(
            Rule(
                id=f"r{i:05d}",
                condition=condition,
                action="answer helpfully",
                enabled=rng.random() > 0.05,
                **scope,
            )
        )
    return AgentBundle(agent=AgentInfo(name=f"bench-{size}"), rules=rules, scenarios=scenarios)


def build(size: int, embedder: OfflineEmbedder) -> AgentIndex:
    bundle = synthetic_bundle(size)
    published = PublishedBundle(
        tenant_id="bench",
        agent_id=f"a{size}",
        version=1,
        bundle=bundle,
        published_at="",
        embedding_model=embedder.model,
        vectors=embed_bundle(bundle, embedder),
    )
    return build_index(published, embedder)


def main(rounds: int = 600) -> None:
    embedder = OfflineEmbedder()
    sizes = (1_000, 10_000)
    indexes = {size: build(size, embedder) for size in sizes}
    config = RetrievalConfig()
    queries = [(message, embedder.embed([message])[0]) for message in MESSAGES]
    samples: dict[int, list[float]] = {size: [] for size in sizes}
    found = dict.fromkeys(sizes, 0)
    # Sizes are interleaved round by round, so both see the same load on a shared machine.
    for round_ in range(rounds):
        message, vector = queries[round_ % len(queries)]
        state = ScenarioState(scenario_id="sc3", step_id="s1") if round_ % 2 else None
        for size in sizes:
            started = time.perf_counter()
            result = retrieve(
                indexes[size], message, vector, state=state, config=config
            )
            samples[size].append((time.perf_counter() - started) * 1000)
            found[size] += len(result.rules)
    p50 = {}
    for size in sizes:
        ordered = sorted(samples[size])
        p50[size] = statistics.median(ordered)
        p95 = ordered[int(len(ordered) * 0.95) - 1]
        print(
            f"rules={size:>6}  p50={p50[size]:6.3f} ms  p95={p95:6.3f} ms  "
            f"rules retrieved/turn={found[size] // rounds}"
        )
    ratio = p50[10_000] / p50[1_000]
    print(f"10x rules -> {ratio:.2f}x time  (budget: p50 <= 10 ms at 10,000 rules, ratio <= 3)")
    print("within budget" if p50[10_000] <= 10.0 and ratio <= 3.0 else "OVER BUDGET")


if __name__ == "__main__":
    main()
