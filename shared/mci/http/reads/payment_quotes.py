"""POST /payment-quotes: the proposed payment of a variable-payment claim (rule 8)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from mci.domain.commands import PaymentQuoteRequest
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, QuoteResponse, ok, problem_responses
from mci.wiring import services

router = new_router()


@router.post(
    "/payment-quotes",
    operation_id="quotePayment",
    tags=[PARTNER],
    summary="Quote the payment of a variable-payment engagement",
    responses={
        200: ok(QuoteResponse, "The proposed payment and how it was set"),
        **problem_responses(401, 403, 413, 415, 422, 503),
    },
)
def quote_payment(request: Annotated[PaymentQuoteRequest, Body()]) -> QuoteResponse:
    return QuoteResponse.of(services().nominations.quote(principal(router), request))
