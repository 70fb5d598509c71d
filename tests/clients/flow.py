"""The README's flow through the Python client that openapi-python-client generates from docs/openapi.json.

    PYTHONPATH=<folder holding the generated mci_client> python tests/clients/flow.py http://127.0.0.1:3000

tests/e2e/test_generated_clients.py generates the client, checks this script with ``mypy --strict`` and runs it
against a local stack of its own. Only the local stack's helpers (``/_local/tokens``, the mailbox) are called
without the client: they are not part of the API. Runs in the clients' environment (.venv-clients), which has
the client's runtime dependencies and nothing of the project.
"""

from __future__ import annotations

import re
import sys
from typing import TypeVar

import httpx
from mci_client import AuthenticatedClient, Client
from mci_client.api.consent_page import decide_consent
from mci_client.api.partner import (
    add_customer,
    check_eligibility,
    claim_customer,
    get_claim,
    get_customers_page,
    list_engagements,
    list_known_customers,
    list_locations,
    quote_payment,
    request_consent,
)
from mci_client.models import (
    Action,
    AddCustomer,
    ClaimCustomer,
    ClaimsResponse,
    ClaimState,
    ClaimView,
    ConsentRequest,
    CustomerContactInput,
    CustomerContactInputLanguage,
    CustomersPageResponse,
    DecideConsentBody,
    DecideConsentBodyDecision,
    EligibilityCheck,
    EligibilityResponse,
    EngagementsResponse,
    GatewayMessage,
    IdentifierInput,
    IdentifierType,
    KnownCustomersResponse,
    LocationsResponse,
    Origin,
    PageItemViewKind,
    PartnerContactInput,
    PaymentQuoteRequest,
    PaymentType,
    Problem,
    ProblemCode,
    QuoteResponse,
    Tab,
)
from mci_client.types import Unset

PARTNER = "p-contoso-partners"
LOCATION = "1234567"
FABRIKAM = IdentifierInput(type_=IdentifierType.DOMAIN, value="fabrikam.com")
T = TypeVar("T")


def expect(kind: type[T], answer: object) -> T:
    """The parsed answer, of the type the contract promises for this status."""
    if not isinstance(answer, kind):
        raise AssertionError(f"expected {kind.__name__}, got {answer!r}")
    return answer


def token(base_url: str, partner_id: str, roles: list[str]) -> str:
    answer = httpx.post(f"{base_url}/_local/tokens", json={"partner_id": partner_id, "roles": roles}, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["token"])


def consent_token(base_url: str) -> str:
    """The token of the newest consent link in the local mailbox (what the customer's email carries)."""
    mailbox = httpx.get(f"{base_url}/_local/mailbox.json", timeout=10).json()
    for item in mailbox["items"]:
        found = re.search(r"/consent/([\w-]+)", item["text"])
        if found:
            return found.group(1)
    raise AssertionError("no consent link in the mailbox")


def walk(base_url: str) -> None:
    client = AuthenticatedClient(
        base_url=base_url, token=token(base_url, PARTNER, ["incentives_user"]), raise_on_unexpected_status=True
    )

    # engagements open to the partner (money a float both ways), and its locations
    engagements = expect(EngagementsResponse, list_engagements.sync(client=client)).items
    by_id = {engagement.engagement_id: engagement for engagement in engagements}
    assert by_id["e-azure-migrate"].payment_type is PaymentType.FIXED
    rules = by_id["e-ai-accelerate"].payment_rules
    assert rules is not None
    assert isinstance(rules.hourly_rate_usd, float | int)
    assert rules.hourly_rate_usd > 0
    locations = expect(LocationsResponse, list_locations.sync(client=client)).items
    assert [location.location_id for location in locations if location.enrolled_in_mci] == [LOCATION]

    # preview eligibility; quote a variable payment
    check = EligibilityCheck(location_id=LOCATION, identifier=FABRIKAM)
    preview = expect(EligibilityResponse, check_eligibility.sync(client=client, body=check))
    assert "e-azure-migrate" in [engagement.engagement_id for engagement in preview.eligible]
    assert preview.tenant_mismatch_reason_required is False
    quote_request = PaymentQuoteRequest(
        engagement_id="e-ai-accelerate", location_id=LOCATION, msx_opportunity_id="7-ABC123XYZ", hours=40
    )
    quote = expect(QuoteResponse, quote_payment.sync(client=client, body=quote_request))
    assert quote.proposed_payment_usd > 0
    assert quote.breakdown.hours == 40

    # add the customer with an Idempotency-Key: the retry answers the same claim
    addition = AddCustomer(
        friendly_name="Fabrikam migration",
        location_id=LOCATION,
        identifier=FABRIKAM,
        engagement_ids=["e-azure-migrate"],
        customer_contact=CustomerContactInput(
            name="Ana García", email="ana@fabrikam.com", language=CustomerContactInputLanguage.ES
        ),
        partner_contact=PartnerContactInput(name="Pat Partner", email="pat@contoso.example"),
    )
    added = expect(ClaimsResponse, add_customer.sync(client=client, body=addition, idempotency_key="client-flow-1"))
    again = expect(ClaimsResponse, add_customer.sync(client=client, body=addition, idempotency_key="client-flow-1"))
    claim = added.claims[0]
    assert again.claims[0].claim_id == claim.claim_id
    assert claim.state is ClaimState.PENDING_CONSENT
    assert claim.origin is Origin.ADDED

    # consent: request it, the customer accepts through the page's form
    requested = request_consent.sync(
        claim.claim_id,
        client=client,
        body=ConsentRequest(deal_size_usd=25000, disclaimer_accepted=True),
        idempotency_key="client-flow-consent",
    )
    assert expect(ClaimView, requested).state is ClaimState.CONSENT_REQUESTED
    page = Client(base_url=base_url, raise_on_unexpected_status=True)
    decided = decide_consent.sync_detailed(
        consent_token(base_url), client=page, body=DecideConsentBody(decision=DecideConsentBodyDecision.ACCEPT)
    )
    assert decided.status_code == 200, decided.content
    consented = expect(ClaimView, get_claim.sync(claim.claim_id, client=client))
    assert consented.state is ClaimState.CONSENT_GRANTED
    assert consented.submission_deadline is not None

    # Fabrikam is a known customer now: claim it for another engagement
    known = expect(KnownCustomersResponse, list_known_customers.sync(client=client)).items
    claim_body = ClaimCustomer(
        friendly_name="Fabrikam security", location_id=LOCATION, engagement_ids=["e-security-workshop"]
    )
    claimed = claim_customer.sync(known[0].customer_id, client=client, body=claim_body, idempotency_key="client-2")
    assert expect(ClaimsResponse, claimed).claims[0].origin is Origin.CLAIMED

    # the Customers page: enums the client can switch on
    customers = get_customers_page.sync("e-security-workshop", client=client, tab=Tab.ELIGIBLE)
    items = expect(CustomersPageResponse, customers).items
    fabrikam = next(item for item in items if item.friendly_name == "Fabrikam security")
    assert fabrikam.kind is PageItemViewKind.CLAIM
    assert fabrikam.customer.type_ is IdentifierType.TENANT_ID
    assert Action.SEND_CONSENT in fabrikam.actions
    assert not isinstance(fabrikam.state, Unset)

    refusals(base_url, client, addition)


def refusals(base_url: str, client: AuthenticatedClient, addition: AddCustomer) -> None:
    """A 401, a 403, a 415 and a 422, each parsed into the model the contract gives it."""
    stranger = AuthenticatedClient(base_url=base_url, token="not-a-jwt", raise_on_unexpected_status=True)
    assert expect(GatewayMessage, list_engagements.sync(client=stranger)).message == "Unauthorized"

    # a verified token whose roles do not include adding customers: the service's 403 is a problem
    reader = AuthenticatedClient(
        base_url=base_url, token=token(base_url, PARTNER, ["referral_admin"]), raise_on_unexpected_status=True
    )
    forbidden = expect(Problem, add_customer.sync(client=reader, body=addition, idempotency_key="client-403"))
    assert forbidden.status == 403

    def as_text(request: httpx.Request) -> None:  # a proxy that rewrites the media type
        request.headers["Content-Type"] = "text/plain"

    texting = AuthenticatedClient(
        base_url=base_url,
        token=client.token,
        raise_on_unexpected_status=True,
        httpx_args={"event_hooks": {"request": [as_text]}},
    )
    unsupported = expect(Problem, add_customer.sync(client=texting, body=addition, idempotency_key="client-415"))
    assert unsupported.status == 415
    assert unsupported.code is ProblemCode.UNSUPPORTED_MEDIA_TYPE

    addition.location_id = "12"
    invalid = expect(Problem, add_customer.sync(client=client, body=addition, idempotency_key="client-422"))
    assert invalid.status == 422
    assert invalid.code is ProblemCode.VALIDATION_ERROR
    assert not isinstance(invalid.errors, Unset)
    assert invalid.errors is not None
    assert "location_id" in [problem.field for problem in invalid.errors]


if __name__ == "__main__":
    walk(sys.argv[1])
    print("the README's flow passed through the generated client")
