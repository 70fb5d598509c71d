"""What every action on claims does at the edge: the caller, its ``Idempotency-Key``, the claims after.

Adding or claiming a customer, and the submit, cancel, review and consent request of one claim, differ only
in their route, command and domain method; their handlers name those and leave the rest here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel

from mci.domain.claims import Claim
from mci.domain.principal import Principal
from mci.http.idempotency import DECLARES_KEY, answered_once
from mci.http.schemas import ClaimsResponse, ClaimView, dump, ok, problem_responses

Command = TypeVar("Command", bound=BaseModel)


def claims_created(
    app: APIGatewayHttpResolver, operation: str, body: dict[str, Any], create: Callable[[Principal], list[Claim]]
) -> Response[dict[str, Any]]:
    """Rules 7 and 9: the claims one request creates, one per engagement, answered 201."""
    answer = answered_once(
        app, operation, body, lambda caller: dump(ClaimsResponse(claims=list(map(ClaimView.of, create(caller)))))
    )
    return Response(status_code=201, content_type="application/json", body=answer)


def claim_action(
    app: APIGatewayHttpResolver,
    operation: str,
    claim_id: str,
    command: Command,
    act: Callable[[Principal, str, Command], Claim],
) -> dict[str, Any]:
    """Run ``act`` for the verified caller, once per ``Idempotency-Key``; answer the claim as it is after."""
    body = {"claim_id": claim_id, **command.model_dump(mode="json")}
    return answered_once(app, operation, body, lambda caller: dump(ClaimView.of(act(caller, claim_id, command))))


def claim_action_route(answer: str, *statuses: int) -> dict[str, Any]:
    """The OpenAPI side of a ``claim_action`` route: it takes a key and answers the claim, or a problem with
    one of ``statuses`` besides those every claim action can answer."""
    problems = problem_responses(*sorted({401, 403, 404, 409, 413, 415, 422, 503, *statuses}))
    return {"openapi_extensions": DECLARES_KEY, "responses": {200: ok(ClaimView, answer), **problems}}
