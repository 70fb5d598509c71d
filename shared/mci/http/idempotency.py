"""Idempotency-Key on mutating routes (Powertools idempotency), scoped to the caller's partner."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from mci.adapters.aws import dynamodb, unavailable
from mci.domain.errors import Conflict, ValidationFailed
from mci.domain.principal import Principal
from mci.http.resolver import principal
from mci.settings import Settings, get_settings

# Powertools idempotency (and jmespath) costs ~150 ms to import: paid only by requests that carry a key.
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from aws_lambda_powertools.utilities.typing import LambdaContext

HEADER = "idempotency-key"
# What Powertools' persistence layer calls on the function's DynamoDB client: the in-progress record, the result,
# a repeat's read-back, the delete after a failure (mci.snapstart primes each).
AWS_CALLS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem")
PRIME_KEY = "snapstart-prime"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")

# The OpenAPI side of the header (local/openapi.py): a route that calls ``once`` passes
# ``openapi_extensions=DECLARES_KEY``; the document then refers it to ``OPENAPI_PARAMETER``.
KEY_MARKER = "x-idempotency-key"
DECLARES_KEY: dict[str, Any] = {KEY_MARKER: True}
_WINDOW_HOURS = Settings.model_fields["idempotency_ttl_seconds"].default // 3600
OPENAPI_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$"},
    "description": (
        "Makes the request safe to retry: 1 to 255 visible ASCII characters (no spaces), chosen by the "
        f"client, scoped to the caller's partner and kept {_WINDOW_HOURS} h. A repeat with the same key and "
        "body returns the first response and changes nothing; the same key with another body is 422 "
        "(`idempotency_key_reused`); a repeat while the first is still running is 409 "
        "(`idempotency_in_progress`, retry after Retry-After seconds). Without it, every request is new."
    ),
}


@lru_cache(maxsize=1)
def _persistence() -> tuple[DynamoDBPersistenceLayer, IdempotencyConfig]:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    settings = get_settings()
    store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name, boto3_client=dynamodb())
    config = IdempotencyConfig(
        event_key_jmespath="[partner_id, key]",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.idempotency_ttl_seconds,
    )
    return store, config


def reset() -> None:
    _persistence.cache_clear()


def prime() -> None:
    """What the first request with a key does, before a SnapStart snapshot: import Powertools idempotency, build
    the persistence layer and one record's way through it (its put and update answered in this process)."""
    from mci.adapters.aws_priming import answered_here

    with answered_here(dynamodb()), warnings.catch_warnings():
        # No Lambda context before a snapshot: Powertools warns that it cannot read the remaining time.
        warnings.filterwarnings("ignore", "Couldn't determine the remaining time", UserWarning)
        once(PRIME_KEY, partner_id=PRIME_KEY, operation="prime", body={}, run=dict)


def once(
    key: str | None,
    *,
    partner_id: str,
    operation: str,
    body: dict[str, Any],
    run: Callable[[], dict[str, Any]],
    context: LambdaContext | None = None,
) -> dict[str, Any]:
    """Run ``run`` once per (partner, key): a repeat returns the first result; another body is 422."""
    if key is None:
        return run()
    if not _KEY.fullmatch(key):
        raise ValidationFailed.single("Idempotency-Key", "must be 1 to 255 visible ASCII characters")
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    store, config = _persistence()
    if context is not None:
        config.register_lambda_context(context)

    done: list[dict[str, Any]] = []

    def execute(request: dict[str, Any]) -> dict[str, Any]:
        done.append(run())
        return done[0]

    execute.__qualname__ = f"once.{operation}"
    guarded = idempotent_function(data_keyword_argument="request", persistence_store=store, config=config)(execute)
    request = {"partner_id": partner_id, "key": key, "body": body}
    try:
        result: dict[str, Any] = guarded(request=request)
    except IdempotencyPersistenceLayerError as error:
        if done:  # the work is done and only its record failed: answer, and try once more to record it
            with contextlib.suppress(Exception):
                store.save_success(data=request, result=done[0])
            return done[0]
        translated = unavailable("DynamoDB", error.__cause__) if error.__cause__ else None
        if translated is None:
            raise
        raise translated from error
    except IdempotencyValidationError:
        raise ValidationFailed.single(
            "Idempotency-Key", "was already used with a different request body", "idempotency_key_reused"
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict(
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still being processed",
            retry_after=1,
        ) from None
    return result


def answered_once(
    app: APIGatewayHttpResolver, operation: str, body: dict[str, Any], run: Callable[[Principal], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``run`` for the verified caller, once per its partner's ``Idempotency-Key``: a repeat with the same
    ``body`` answers the first result, another body is a 422. Every mutating route's handler goes through here."""
    caller = principal(app)
    return once(
        app.current_event.headers.get(HEADER),
        partner_id=caller.partner_id,
        operation=operation,
        body=body,
        run=lambda: run(caller),
        context=app.lambda_context,
    )
