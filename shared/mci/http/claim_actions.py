"""What every action on one claim does at the edge: the caller, its ``Idempotency-Key``, the claim after.

Submit, cancel, review and the consent request differ only in their route, command and domain method;
their handlers name those three and leave the rest here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel

from mci.domain.claims import Claim
from mci.domain.principal import Principal
from mci.http.idempotency import HEADER, once
from mci.http.resolver import principal
from mci.http.schemas import ClaimView, dump

Command = TypeVar("Command", bound=BaseModel)


def claim_action(
    app: APIGatewayHttpResolver,
    operation: str,
    claim_id: str,
    command: Command,
    act: Callable[[Principal, str, Command], Claim],
) -> dict[str, Any]:
    """Run ``act`` for the verified caller, once per ``Idempotency-Key``; answer the claim as it is after."""
    caller = principal(app)
    return once(
        app.current_event.headers.get(HEADER),
        partner_id=caller.partner_id,
        operation=operation,
        body={"claim_id": claim_id, **command.model_dump(mode="json")},
        run=lambda: dump(ClaimView.of(act(caller, claim_id, command))),
        context=app.lambda_context,
    )
