"""DynamoBundleStore: versioned publish with a conditional head flip, one Query per load."""

from __future__ import annotations

import base64
import os
import threading
from typing import Any

import pytest

from chalicelib.domain.bundle import AgentBundle, NewVersion, parse_bundle
from chalicelib.domain.errors import Conflict
from chalicelib.stores.dynamo_bundles import DynamoBundleStore
from chalicelib.stores.metering import CallMeter
from tests.conftest import Aws

VECTORS = {"rule:greet": [0.5, -0.25, 1.0], "scenario:refund": [0.0, 0.125, -2.0]}


def a_bundle(name: str = "Support", rules: int = 1, noisy: bool = False) -> AgentBundle:
    """A valid bundle; `noisy` gives each rule an incompressible 2 KB action (forces several slices)."""
    return parse_bundle(
        {
            "agent": {"name": name, "config": {"response": {"max_length": 500}}},
            "fields": [{"name": "email", "type": "email", "pii": True}],
            "tools": [{"id": "lookup", "url": "https://tools.example.com/lookup", "inputs": ["email"]}],
            "templates": [{"id": "bye", "mode": "fallback", "text": "Sorry, {{ email }}"}],
            "rules": [
                {
                    "id": "greet" if index == 0 else f"r{index}",
                    "condition": "the user greets",
                    "action": base64.b64encode(os.urandom(1500)).decode() if noisy else "say hello",
                    "templates": ["bye"],
                }
                for index in range(rules)
            ],
            "scenarios": [
                {
                    "id": "refund",
                    "condition": "wants a refund",
                    "entry_step": "ask",
                    "steps": [{"id": "ask", "required_fields": ["email"], "terminal": True}],
                }
            ],
            "channels": {"twilio": {"config": {"response": {"format": "plain"}}}},
        }
    )


@pytest.fixture
def store(any_aws: Aws) -> DynamoBundleStore:
    return DynamoBundleStore(any_aws.dynamodb, any_aws.table)


def publish(
    store: DynamoBundleStore,
    bundle: AgentBundle,
    expected: int | None = None,
    tenant: str = "acme",
    agent: str = "support",
    vectors: dict[str, list[float]] | None = None,
) -> int:
    return store.publish(tenant, agent, NewVersion(bundle, VECTORS if vectors is None else vectors, "offline-256"),
                         expected_version=expected)


def agent_items(aws: Aws, tenant: str = "acme", agent: str = "support") -> list[dict[str, Any]]:
    pages = aws.dynamodb.get_paginator("query").paginate(
        TableName=aws.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"T#{tenant}#A#{agent}"}},
    )
    return [item for page in pages for item in page["Items"]]


def test_a_published_bundle_loads_back_equal_with_its_vectors(store: DynamoBundleStore) -> None:
    bundle = a_bundle()
    version = publish(store, bundle)
    loaded = store.load("acme", "support")
    assert version == 1
    assert loaded is not None
    assert (loaded.version, loaded.bundle, loaded.vectors) == (1, bundle, VECTORS)
    assert loaded.embedding_model == "offline-256"
    assert loaded.published_at
    assert store.latest_version("acme", "support") == 1


def test_vectors_keep_float32_precision(store: DynamoBundleStore) -> None:
    publish(store, a_bundle(), vectors={"rule:greet": [0.1, 1 / 3, -7.77]})
    loaded = store.load("acme", "support")
    assert loaded is not None
    assert loaded.vectors["rule:greet"] == pytest.approx([0.1, 1 / 3, -7.77], rel=1e-6)


def test_a_latest_load_is_one_get_and_one_query(any_aws: Aws, store: DynamoBundleStore) -> None:
    publish(store, a_bundle())
    meter = CallMeter.attach(any_aws.dynamodb)
    assert store.load("acme", "support") is not None
    assert meter.by_operation == {"GetItem": 1, "Query": 1}
    meter.reset()
    assert store.load("acme", "support", version=1) is not None
    assert meter.by_operation == {"Query": 1}


def test_a_bundle_bigger_than_an_item_is_split_and_loads_whole(
    any_aws: Aws, store: DynamoBundleStore
) -> None:
    bundle = a_bundle(rules=400, noisy=True)
    vectors = {f"rule:r{index}": [float(index % 7)] * 256 for index in range(1, 400)}
    publish(store, bundle, vectors=vectors)
    loaded = store.load("acme", "support")
    assert loaded is not None
    assert loaded.bundle == bundle
    assert loaded.vectors == vectors
    sizes = [
        sum(len(name) + len(next(iter(value.values()))) for name, value in item.items())
        for item in agent_items(any_aws)
    ]
    assert len(sizes) > 4
    assert max(sizes) < 350_000
    assert [info.version for info in store.versions("acme", "support")] == [1]  # over a Query page


def test_a_publish_from_a_stale_version_is_rejected_and_changes_nothing(
    any_aws: Aws, store: DynamoBundleStore
) -> None:
    publish(store, a_bundle("first"))
    publish(store, a_bundle("second"), expected=1)
    before = agent_items(any_aws)
    with pytest.raises(Conflict):
        publish(store, a_bundle("late"), expected=1)
    loaded = store.load("acme", "support")
    assert loaded is not None
    assert (loaded.version, loaded.bundle.agent.name) == (2, "second")
    assert agent_items(any_aws) == before


def test_a_first_publish_expecting_a_version_is_rejected(store: DynamoBundleStore) -> None:
    with pytest.raises(Conflict):
        publish(store, a_bundle(), expected=3)
    assert store.load("acme", "support") is None


def test_two_racing_publishes_from_one_base_commit_exactly_one(
    any_aws: Aws, store: DynamoBundleStore
) -> None:
    publish(store, a_bundle("base"))
    # Hold both publishes just before their commit, so both have read the head and written parts.
    # Then let the two commits through one at a time: DynamoDB serialises transactions, but moto's
    # TransactWriteItems is not isolated (a failing one restores a snapshot of the whole table).
    barrier, one_commit_at_a_time = threading.Barrier(2, timeout=30), threading.Lock()

    def hold(**_: Any) -> None:
        barrier.wait()
        one_commit_at_a_time.acquire()

    def release(**_: Any) -> None:
        one_commit_at_a_time.release()

    events = any_aws.dynamodb.meta.events
    events.register("before-call.dynamodb.TransactWriteItems", hold)
    events.register("after-call.dynamodb.TransactWriteItems", release)
    outcomes: dict[str, object] = {}

    def race(name: str) -> None:
        try:
            outcomes[name] = publish(store, a_bundle(name))
        except Conflict as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=race, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    events.unregister("before-call.dynamodb.TransactWriteItems", hold)
    events.unregister("after-call.dynamodb.TransactWriteItems", release)

    winners = [name for name, outcome in outcomes.items() if outcome == 2]
    losers = [name for name, outcome in outcomes.items() if isinstance(outcome, Conflict)]
    assert len(winners) == 1 and len(losers) == 1
    loaded = store.load("acme", "support")
    assert loaded is not None
    assert (loaded.version, loaded.bundle.agent.name) == (2, winners[0])
    assert [info.version for info in store.versions("acme", "support")] == [1, 2]
    # The loser's parts are gone: only the committed versions' items remain.
    assert len(agent_items(any_aws)) == 2 * 3  # per version: META, one bundle slice, one vector slice


def test_an_older_version_still_loads_after_newer_ones(store: DynamoBundleStore) -> None:
    first = a_bundle("first")
    publish(store, first)
    publish(store, a_bundle("second"), expected=1)
    publish(store, a_bundle("third", rules=3))
    old = store.load("acme", "support", version=1)
    assert old is not None
    assert (old.version, old.bundle) == (1, first)
    assert store.load("acme", "support", version=9) is None
    history = store.versions("acme", "support")
    assert [(info.version, info.rules, info.scenarios) for info in history] == [
        (1, 1, 1),
        (2, 1, 1),
        (3, 3, 1),
    ]
    assert all(info.published_at for info in history)


def test_publishing_without_vectors_loads_none(store: DynamoBundleStore) -> None:
    publish(store, a_bundle(), vectors={})
    loaded = store.load("acme", "support")
    assert loaded is not None
    assert loaded.vectors == {}


def test_vectors_of_mixed_dimensions_are_refused(store: DynamoBundleStore) -> None:
    from chalicelib.domain.errors import InvalidInput

    with pytest.raises(InvalidInput):
        publish(store, a_bundle(), vectors={"rule:a": [1.0, 2.0], "rule:b": [1.0]})
    assert store.latest_version("acme", "support") is None


def test_list_agents_gives_each_agent_with_its_latest_version(store: DynamoBundleStore) -> None:
    publish(store, a_bundle(), agent="sales")
    publish(store, a_bundle(), agent="support")
    publish(store, a_bundle(), agent="support")
    publish(store, a_bundle(), tenant="other", agent="other-agent")
    assert store.list_agents("acme") == [("sales", 1), ("support", 2)]


def test_a_deleted_agent_no_longer_loads_and_a_new_publish_goes_on_numbering(
        any_aws: Aws, store: DynamoBundleStore) -> None:
    publish(store, a_bundle())
    publish(store, a_bundle())
    assert store.delete("acme", "support") is True
    assert store.load("acme", "support") is None
    assert store.load("acme", "support", version=1) is None
    assert store.versions("acme", "support") == []
    assert store.list_agents("acme") == []
    assert agent_items(any_aws) == []
    assert store.delete("acme", "support") is False
    # A container may still hold version 1 or 2 of the deleted agent: never reuse those numbers.
    assert publish(store, a_bundle("again")) == 3
    loaded = store.load("acme", "support")
    assert loaded is not None and loaded.bundle.agent.name == "again"
    assert store.list_agents("acme") == [("support", 3)]


def test_another_tenant_cannot_load_or_delete_the_agent(store: DynamoBundleStore) -> None:
    publish(store, a_bundle())
    assert store.load("intruder", "support") is None
    assert store.load("intruder", "support", version=1) is None
    assert store.versions("intruder", "support") == []
    assert store.delete("intruder", "support") is False
    assert store.load("acme", "support") is not None


def test_a_publish_that_died_before_its_commit_is_never_served(
    any_aws: Aws, store: DynamoBundleStore
) -> None:
    publish(store, a_bundle("committed"))

    def crash(**_: Any) -> None:
        raise RuntimeError("the container died")

    any_aws.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", crash)
    with pytest.raises(RuntimeError):
        publish(store, a_bundle("crashed"))
    any_aws.dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", crash)
    assert store.load("acme", "support", version=2) is None
    loaded = store.load("acme", "support")
    assert loaded is not None and loaded.bundle.agent.name == "committed"
    assert publish(store, a_bundle("next")) == 2
    loaded = store.load("acme", "support", version=2)
    assert loaded is not None and loaded.bundle.agent.name == "next"


def test_a_version_with_a_missing_slice_is_not_served(any_aws: Aws, store: DynamoBundleStore) -> None:
    publish(store, a_bundle())
    vector_slice = next(item for item in agent_items(any_aws) if "#E#" in item["sk"]["S"])
    any_aws.dynamodb.delete_item(
        TableName=any_aws.table, Key={"pk": vector_slice["pk"], "sk": vector_slice["sk"]}
    )
    assert store.load("acme", "support") is None


def test_a_publish_overtaken_by_a_delete_does_not_bring_the_agent_back(
    any_aws: Aws, store: DynamoBundleStore
) -> None:
    publish(store, a_bundle())
    deleted: list[bool] = []

    def delete_first(**_: Any) -> None:
        if not deleted:  # another editor deletes the agent while this publish is writing
            deleted.append(store.delete("acme", "support"))

    any_aws.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", delete_first)
    with pytest.raises(Conflict):
        publish(store, a_bundle("late"))
    any_aws.dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", delete_first)
    assert deleted == [True]
    assert store.load("acme", "support") is None
    assert store.list_agents("acme") == []
    assert agent_items(any_aws) == []
