"""Idempotency-Key on POST /v1/agents/{agent_id}/turns: a retried POST answers the first result.

Powertools idempotency on the RUCHE_IDEMPOTENCY_TABLE table (key attribute `id`, TTL attribute
`expiration`, infra/template.yaml) wraps turns.run_sync, which stays unaware of it:

- the record id is `turn#<tenant>#<md5 of [tenant, key]>`: a key is per tenant, so two tenants
  using the same key never see each other's turn;
- the first POST writes an INPROGRESS record before the turn runs; a retry that arrives while it
  runs is 409 `conflict` (IETF draft-ietf-httpapi-idempotency-key-header, §2.7); a turn that raises
  deletes the record, so the retry runs the turn again;
- the completed reply is stored for RECORD_TTL_S; a retry within it gets that reply, and no second
  turn (one turn record);
- the same key with a different body (agent or message) is 422 `invalid_input` at path
  `Idempotency-Key` (the draft's answer to a reused key; the payload hash is Powertools'
  payload validation);
- an INPROGRESS record of a container that died mid-turn expires after IN_PROGRESS_TTL_S, and a
  retry then runs the turn;
- each record is listed under the interlocutor its turn answered (stores/idempotency_index.py):
  erasing the interlocutor deletes it, so a replay never answers an erased reply again.

A key is 1..255 printable ASCII characters (422 otherwise). Without the header nothing is stored.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from chalicelib.domain.errors import Conflict, InvalidInput, Unavailable
from chalicelib.runtime import turns
from chalicelib.runtime.log import logger
from chalicelib.runtime.services import Services
from chalicelib.runtime.turns import TurnInput, TurnResult

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from aws_lambda_powertools.utilities.typing import LambdaContext

RECORD_TTL_S = 24 * 3600  # how long a retry gets the first answer (Stripe keeps keys 24 h too)
IN_PROGRESS_TTL_S = 150  # longer than any turn (the sync lock wait + a turn within the Lambda timeout)
MAX_KEY_LENGTH = 255
HEADER = "Idempotency-Key"


class _TurnDeadline:
    """Stands in for the Lambda context: Powertools derives the INPROGRESS expiry from it."""

    def get_remaining_time_in_millis(self) -> int:
        return IN_PROGRESS_TTL_S * 1000


def run_sync_once(svc: Services, tenant_id: str, agent_id: str, request: TurnInput,
                  idempotency_key: str | None) -> TurnResult:
    """turns.run_sync, at most once per (tenant, Idempotency-Key) within RECORD_TTL_S.

    Raises what run_sync raises; InvalidInput (path `Idempotency-Key`) for a malformed key or a
    key reused with another body; Conflict while the first POST with the key is still running;
    Unavailable when the idempotency table cannot be reached (no turn ran).
    """
    if idempotency_key is None:
        return turns.run_sync(svc, tenant_id, agent_id, request)
    _check_key(idempotency_key)
    # Powertools' idempotency utility loads on the first keyed POST, not at cold start (import budget).
    from aws_lambda_powertools.utilities.idempotency import idempotent_function  # noqa: PLC0415
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )
    from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import (  # noqa: PLC0415
        PydanticSerializer,
    )

    payload = {"tenant_id": tenant_id, "key": idempotency_key, "agent_id": agent_id,
               "request": request.as_json()}

    store = _store(svc)

    def run(payload: dict[str, Any]) -> TurnResult:
        reply = turns.run_sync(svc, tenant_id, agent_id, request)
        # The record will hold this reply: list it under its interlocutor so erasure deletes it.
        # The id is the one Powertools itself stores under (the store is configured by now).
        record_id = store._get_hashed_idempotency_key(payload)
        if record_id is not None:
            try:
                svc.idempotency_index.remember(tenant_id, reply.interlocutor_id, record_id,
                                               int(time.time()) + RECORD_TTL_S)
            except Unavailable:  # the turn is committed: failing now would make the retry a second turn
                logger.warning("idempotency record not listed for erasure; it expires on its own",
                               extra={"tenant_id": tenant_id, "turn_id": reply.turn_id})
        return reply

    once = idempotent_function(
        run,
        data_keyword_argument="payload",
        persistence_store=store,
        config=_config(),
        output_serializer=PydanticSerializer(model=TurnResult),
        key_prefix=f"turn#{tenant_id}",
    )
    try:
        return cast(TurnResult, once(payload=payload))
    except IdempotencyAlreadyInProgressError:
        raise Conflict("a request with this Idempotency-Key is still running; retry shortly") from None
    except IdempotencyValidationError:
        raise InvalidInput.at(HEADER, "was already used with a different request body") from None
    except IdempotencyPersistenceLayerError as exc:
        raise Unavailable("the idempotency store is unavailable; no turn ran") from exc


def _check_key(value: str) -> None:
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise InvalidInput.at(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")


def _store(svc: Services) -> DynamoDBPersistenceLayer:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer  # noqa: PLC0415 - see run_sync_once

    # One layer per call: Powertools keeps the key prefix on the layer, and prefixes differ by tenant.
    return DynamoDBPersistenceLayer(
        table_name=svc.settings.idempotency_table, key_attr="id", expiry_attr="expiration",
        boto3_client=svc.dynamodb,
    )


def _config() -> IdempotencyConfig:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig  # noqa: PLC0415 - see run_sync_once

    config = IdempotencyConfig(
        event_key_jmespath="[tenant_id, key]",
        payload_validation_jmespath="[agent_id, request]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=RECORD_TTL_S,
    )
    config.register_lambda_context(cast("LambdaContext", _TurnDeadline()))
    return config
