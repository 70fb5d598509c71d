"""GET /known-customers: customers that granted consent on an earlier claim of the caller's partner."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import Field

from mci.domain.claim_queries import known_customers
from mci.domain.claims import CustomerContact, PartnerContact
from mci.domain.identifiers import IdentifierType
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, KnownIdentifier, View, ok, problem_responses
from mci.wiring import services

if TYPE_CHECKING:
    from mci.domain.ports import KnownCustomer


class KnownCustomerView(View):
    customer_id: str = Field(description="Use in POST /known-customers/{customer_id}/claims")
    identifier: KnownIdentifier
    name: str
    last_contact: CustomerContact
    partner_contact: PartnerContact
    last_claim_id: str
    known_since: datetime
    updated_at: datetime

    @classmethod
    def of(cls, known: KnownCustomer) -> KnownCustomerView:
        return cls(
            customer_id=known.customer_id,
            identifier=KnownIdentifier(type=IdentifierType(known.identifier_type), value=known.identifier_value),
            name=known.name,
            last_contact=CustomerContact.model_validate(known.customer_contact),
            partner_contact=PartnerContact.model_validate(known.partner_contact),
            last_claim_id=known.last_claim_id,
            known_since=known.known_since,
            updated_at=known.updated_at,
        )


class KnownCustomersResponse(View):
    items: list[KnownCustomerView]


router = new_router()


@router.get(
    "/known-customers",
    operation_id="listKnownCustomers",
    tags=[PARTNER],
    summary="Known customers of the caller's partner, most recently active first",
    responses={200: ok(KnownCustomersResponse, "Known customers"), **problem_responses(401, 403, 503)},
)
def list_known_customers() -> KnownCustomersResponse:
    found = known_customers(services().claims, principal(router))
    return KnownCustomersResponse(items=[KnownCustomerView.of(k) for k in found])
