"""Count the AWS calls made through a boto3 client, to check the round-trip budgets of DESIGN.md §7.

    meter = CallMeter.attach(dynamodb_client)
    ... run a turn ...
    assert meter.count <= 3, meter.by_operation

It listens on the client's `before-call` event, which fires once per API call (botocore's own
retries of that call are not counted: they are the same round trip as far as our code goes).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class CallMeter:
    """A counter of API calls per operation name, fed by one boto3 client's event hooks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._detach: list[Any] = []

    @classmethod
    def attach(cls, client: Any) -> CallMeter:
        """A meter counting every later call made through `client` (any boto3 client)."""
        meter = cls()
        meter.watch(client)
        return meter

    def watch(self, client: Any) -> None:
        """Also count the calls of another client (e.g. DynamoDB and SQS in one meter)."""
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        event_name = f"before-call.{service}"
        unique_id = f"ruche-call-meter-{id(self)}"
        events.register(event_name, self._on_call, unique_id=unique_id)
        self._detach.append(lambda: events.unregister(event_name, unique_id=unique_id))

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._calls[str(model.name)] += 1

    @property
    def count(self) -> int:
        """Calls counted since attach or the last reset."""
        with self._lock:
            return sum(self._calls.values())

    @property
    def by_operation(self) -> dict[str, int]:
        """Calls per operation, e.g. {"GetItem": 1, "Query": 1, "TransactWriteItems": 1}."""
        with self._lock:
            return dict(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def detach(self) -> None:
        """Stop counting; the counts so far stay readable."""
        for undo in self._detach:
            undo()
        self._detach.clear()
