"""The turn queue's one message type: a turn record or an outbound event, told apart by `kind`.

Every producer sends through `send_request` (the body, the production MessageGroupId and the
deduplication id), and the worker and the DLQ replay read a body with `parse_queue_message`, so
the wire format lives here only:

- TurnMessage, `kind: "turn"`: an inbound message already in its session's inbox
  (runtime/queueing.py). Group = the session key's hash: a session's records run one at a time,
  in order. Deduplication id = sha256(message id): SQS drops a resend within its 5-minute window.
- EventMessage, `kind: "event"`: one outbound event for one endpoint (runtime/events.py). Group =
  `event-<tenant>#<endpoint>`: an endpoint's events stay in order and a failing endpoint holds
  only its own group. Deduplication id = the event id.

A body without `kind` is a turn: records queued before `kind` was required (a deploy drains the
queue while the new worker already reads it) must still be answered. Anything else that does not
parse is poison: parse_queue_message raises, the record fails, is logged and retried, and after
the queue's maxReceiveCount lands in the dead-letter queue. Errors never echo the body (it holds
the user's text).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from chalicelib.domain.event import Event
from chalicelib.domain.session import SessionKey, session_key_hash

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageRequestTypeDef


class TurnMessage(BaseModel):
    """The record of one inbound message (channel webhook or asynchronous API turn)."""

    # Unknown keys are ignored, not refused: a newer producer's record stays readable during a deploy.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    kind: Literal["turn"] = "turn"
    tenant_id: str
    agent_id: str
    binding_id: str | None = None
    channel: str
    session_id: str | None = None  # None: ingest left opening the session to the worker
    user_id: str
    message_id: str
    text: str = Field(repr=False)
    reply_to: dict[str, Any] = Field(default_factory=dict)
    received_at: float = 0.0
    turn_id: str | None = None  # set by an asynchronous API turn, which answered with it
    provider_message_id: str | None = None  # a channel's own id (webhooks), for tracing a message

    @classmethod
    def of(cls, key: SessionKey, **fields: Any) -> TurnMessage:
        """The record of a message of this session key (`fields`: the message's own, validated)."""
        return cls(tenant_id=key.tenant_id, agent_id=key.agent_id, channel=key.channel, user_id=key.user_id,
                   **fields)

    @property
    def session_key(self) -> SessionKey:
        return SessionKey(tenant_id=self.tenant_id, agent_id=self.agent_id, channel=self.channel,
                          user_id=self.user_id)

    @property
    def group_id(self) -> str:
        return session_key_hash(self.session_key)

    @property
    def deduplication_id(self) -> str:
        return hashlib.sha256(self.message_id.encode()).hexdigest()


class EventMessage(Event):
    """One outbound event for one endpoint; the worker POSTs its `body()`."""

    kind: Literal["event"] = "event"

    @property
    def group_id(self) -> str:
        return f"event-{self.tenant_id}#{self.endpoint_id}"

    @property
    def deduplication_id(self) -> str:
        return self.id


def _kind(value: Any) -> str | None:
    kind = value.get("kind", "turn") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) else None  # no kind in a dict: a record from before it was written


QueueMessage = Annotated[
    Annotated[TurnMessage, Tag("turn")] | Annotated[EventMessage, Tag("event")],
    Discriminator(_kind),
]
# The members hide their input in errors; the union's own errors (a bad tag) need it said again.
_ADAPTER: TypeAdapter[TurnMessage | EventMessage] = TypeAdapter(
    QueueMessage, config=ConfigDict(hide_input_in_errors=True))


def parse_queue_message(body: str) -> TurnMessage | EventMessage:
    """The message of a queue record's body. Raises pydantic.ValidationError for a poison body."""
    return _ADAPTER.validate_json(body)


def is_event_message(body: str) -> bool:
    """True for a body whose kind is "event", valid or not (a look at the kind, no validation)."""
    try:
        return _kind(json.loads(body)) == "event"
    except ValueError:
        return False


def send_request(queue_url: str, message: TurnMessage | EventMessage, *,
                 deduplication_id: str | None = None) -> SendMessageRequestTypeDef:
    """The SendMessage parameters of `message`: its body, production group and deduplication id.

    `deduplication_id` replaces the message's own when the same message is sent again on purpose
    (a DLQ replay) and SQS must not drop it as a duplicate within its window.
    """
    return {
        "QueueUrl": queue_url,
        "MessageBody": message.model_dump_json(),
        "MessageGroupId": message.group_id,
        "MessageDeduplicationId": deduplication_id or message.deduplication_id,
    }
