"""POST /payment-quotes: the proposed payment of a variable-payment claim (rule 8)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import Field

from mci.domain.commands import PaymentQuoteRequest
from mci.domain.money import Share, Usd
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, View, ok, problem_responses
from mci.wiring import nominations

if TYPE_CHECKING:
    from mci.domain.pricing import Quote


class QuoteBreakdown(View):
    hours: int
    hourly_rate_usd: Usd
    hours_amount_usd: Usd
    max_payment_usd: Usd
    opportunity_value_usd: Usd
    max_opportunity_share: Share
    opportunity_cap_usd: Usd
    limited_by: str = Field(description="hours, max_payment or opportunity_share: the term that set the payment")


class QuoteResponse(View):
    proposed_payment_usd: Usd
    breakdown: QuoteBreakdown

    @classmethod
    def of(cls, quote: Quote) -> QuoteResponse:
        return cls(
            proposed_payment_usd=quote.proposed_payment_usd,
            breakdown=QuoteBreakdown(
                hours=quote.hours,
                hourly_rate_usd=quote.hourly_rate_usd,
                hours_amount_usd=quote.hours_amount_usd,
                max_payment_usd=quote.max_payment_usd,
                opportunity_value_usd=quote.opportunity_value_usd,
                max_opportunity_share=quote.max_opportunity_share,
                opportunity_cap_usd=quote.opportunity_cap_usd,
                limited_by=quote.limited_by,
            ),
        )


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
    return QuoteResponse.of(nominations().quote(principal(router), request))
