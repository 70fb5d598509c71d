"""POST /known-customers/{customer_id}/claims through the real handler on moto (rules 9-11)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.moto_patches import lean_moto
from tests.support.api import Answer, Caller
from tests.support.claims import KEY
from tests.support.consent import northwind_body, sent_messages, token_in
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.reference import (
    AI,
    CONTOSO_MADRID,
    CONTOSO_SEATTLE,
    FABRIKAM_TENANT,
    LEGACY,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    SECURITY,
    TAILSPIN_TENANT,
    add_customer_body,
    demo_json,
)
from tests.support.store_snapshots import TableSnapshot, assert_all_counters_match

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

DATA_ESTATE = "e-data-estate"  # a third open engagement that accepts tenant ids (loaded by operations)
DOMAIN_ONLY = "e-domain-only"  # an engagement that accepts only domain (issue 12.12)
UNKNOWN_CUSTOMER = "tenant_id:5f1c2a3b-0000-4000-8000-00000000ffff"


@pytest.fixture(autouse=True)
def lean_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_moto(monkeypatch)


@pytest.fixture(autouse=True)
def counters_match_claims(dynamodb: DynamoDBClient) -> Iterator[None]:
    """Rule 11 after every test: each stored counter equals the stored active claims it counts."""
    yield
    assert_all_counters_match(TableSnapshot(dynamodb))


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> LifecycleApi:
    made = lifecycle_api(lambda_context)
    data = demo_json()
    madrid = next(loc for loc in data["locations"] if loc["location_id"] == CONTOSO_MADRID)
    madrid["eligible_engagements"].append(DATA_ESTATE)
    made.load_reference(
        {
            "engagements": [
                {
                    "engagement_id": DATA_ESTATE,
                    "name": "Data estate review",
                    "payment_type": "fixed",
                    "identifier_types": ["tenant_id", "domain"],
                    "consent_window_days": 45,
                    "submission_window_days": 60,
                    "max_active_claims_per_customer": 1,
                    "criteria": {"segments": ["SMB"]},
                    "opens_on": "2026-01-01",
                    "closes_on": "2027-12-31",
                }
            ],
            "locations": [madrid],
        }
    )
    return made


@pytest.fixture
def northwind(lambda_context: Any) -> Caller:
    return Caller(NORTHWIND, ["incentives_user"], lambda_context)


@pytest.fixture
def known(api: LifecycleApi) -> str:
    """Fabrikam, made a known customer of Contoso by accepting consent on an Azure Migrate claim."""
    api.granted()
    [customer] = api.known_customers().body["items"]
    assert customer["customer_id"] == KEY
    customer_id: str = customer["customer_id"]
    return customer_id


def claim_body(*engagement_ids: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "friendly_name": "Fabrikam security",
        "location_id": CONTOSO_MADRID,
        "engagement_ids": list(engagement_ids),
    }
    body.update(overrides)
    return body


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.body["status"], answer.body["code"]) == (status, code), answer.body


def claim_count(dynamodb: DynamoDBClient) -> int:
    return len(TableSnapshot(dynamodb).claims)


# ---------------------------------------------------------------- claiming a known customer (rule 9)


def test_a_known_customer_is_claimed_for_another_engagement(api: LifecycleApi, known: str, clock: FixedClock) -> None:
    [customer] = api.known_customers().body["items"]
    answer = api.claim_customer(known, claim_body(SECURITY))
    assert answer.status == 201, answer.body
    [claim] = answer.body["claims"]
    assert claim["origin"] == "claimed"
    assert claim["engagement_id"] == SECURITY
    assert claim["state"] == "pending_consent"
    assert claim["friendly_name"] == "Fabrikam security"
    assert claim["location_id"] == CONTOSO_MADRID
    assert claim["identifier"]["type"] == "tenant_id"
    assert claim["identifier"]["value"] == FABRIKAM_TENANT
    assert claim["customer_contact"] == customer["last_contact"]
    assert claim["partner_contact"] == customer["partner_contact"]
    assert claim["consent_deadline"] == "2026-12-27T10:00:00Z"
    assert [(h["from"], h["to"], h["reason"]) for h in claim["history"]] == [(None, "pending_consent", "claimed")]
    assert api.claim(claim["claim_id"]) == claim


def test_a_customer_added_by_domain_is_claimed_for_a_domain_only_engagement(
    api: LifecycleApi, known: str, dynamodb: DynamoDBClient
) -> None:
    """Issue 12.12: the known customer keeps its domain, so an engagement that accepts only domain is open."""
    data = demo_json()
    madrid = next(loc for loc in data["locations"] if loc["location_id"] == CONTOSO_MADRID)
    madrid["eligible_engagements"] += [DATA_ESTATE, DOMAIN_ONLY]
    security = next(e for e in data["engagements"] if e["engagement_id"] == SECURITY)
    domain_only = {**security, "engagement_id": DOMAIN_ONLY, "name": "Domain only", "identifier_types": ["domain"]}
    api.load_reference({"engagements": [domain_only], "locations": [madrid]})
    answer = api.claim_customer(known, claim_body(DOMAIN_ONLY))
    assert answer.status == 201, answer.body
    [claim] = answer.body["claims"]
    assert claim["identifier"] == {"type": "domain", "value": "fabrikam.com", "resolved_tenant_id": FABRIKAM_TENANT}
    stored = [c for c in TableSnapshot(dynamodb).claims if c.claim_id == claim["claim_id"]]
    assert [(c.customer_key, c.origin.value) for c in stored] == [(KEY, "claimed")]  # the tenant stays the key


def test_the_claimed_customer_goes_through_consent_like_an_added_one(api: LifecycleApi, known: str) -> None:
    [claim] = api.claim_customer(known, claim_body(SECURITY)).body["claims"]
    api.accept(claim["claim_id"])
    assert api.submit(claim["claim_id"]).status == 200
    [customer] = api.known_customers().body["items"]
    assert customer["last_claim_id"] == claim["claim_id"]


def test_contacts_come_from_the_last_consented_claim(api: LifecycleApi, known: str) -> None:
    first = api.claim_customer(known, claim_body(SECURITY))
    security = first.body["claims"][0]["claim_id"]
    newer_contact = {"name": "Luis Pérez", "email": "luis@fabrikam.com", "phone": "+34 600 000 000", "language": "es"}
    newer_partner = {"name": "Kai Berg", "email": "kai@contoso-partners.com", "phone": None}
    first_request = {"deal_size_usd": 5000, "disclaimer_accepted": True, "customer_contact": newer_contact}
    answer = api.request(security, {**first_request, "partner_contact": newer_partner})
    assert answer.status == 200, answer.body
    assert api.decide(token_in(str(sent_messages()[-1].body)), "accept").status == 200
    [customer] = api.known_customers().body["items"]
    assert customer["last_claim_id"] == security
    claimed = api.claim_customer(known, claim_body(DATA_ESTATE))
    assert claimed.status == 201, claimed.body
    [claim] = claimed.body["claims"]
    assert claim["customer_contact"] == newer_contact
    assert claim["partner_contact"] == newer_partner


def test_contacts_are_editable(api: LifecycleApi, known: str) -> None:
    contact = {"name": "Eva Ruiz", "email": "Eva@Fabrikam.com", "language": "en"}
    partner = {"name": "Noa Kim", "email": "noa@contoso-partners.com", "phone": "+1 425 555 0100"}
    answer = api.claim_customer(known, claim_body(SECURITY, customer_contact=contact, partner_contact=partner))
    assert answer.status == 201, answer.body
    [claim] = answer.body["claims"]
    assert claim["customer_contact"] == {
        "name": "Eva Ruiz",
        "email": "Eva@fabrikam.com",
        "phone": None,
        "language": "en",
    }
    assert claim["partner_contact"] == {**partner}
    only_partner = api.claim_customer(known, claim_body(DATA_ESTATE, partner_contact=partner))
    [other] = only_partner.body["claims"]
    [customer] = api.known_customers().body["items"]
    assert other["customer_contact"] == customer["last_contact"]
    assert other["partner_contact"] == partner


def test_several_engagements_are_claimed_together(api: LifecycleApi, known: str, dynamodb: DynamoDBClient) -> None:
    answer = api.claim_customer(known, claim_body(SECURITY, DATA_ESTATE))
    assert answer.status == 201, answer.body
    claims = answer.body["claims"]
    assert [c["engagement_id"] for c in claims] == [SECURITY, DATA_ESTATE]
    assert len({c["claim_id"] for c in claims}) == 2
    assert {c["origin"] for c in claims} == {"claimed"}
    assert claims[1]["consent_deadline"] == "2027-01-11T10:00:00Z"  # 45-day window of the data estate review
    snapshot = TableSnapshot(dynamodb)
    for engagement_id in (SECURITY, DATA_ESTATE):
        assert snapshot.counter(engagement_id, KEY).active_count == 1  # type: ignore[union-attr]


def test_several_engagements_are_all_or_nothing(api: LifecycleApi, known: str, dynamodb: DynamoDBClient) -> None:
    before = claim_count(dynamodb)
    duplicate = api.claim_customer(known, claim_body(SECURITY, MIGRATE))  # Migrate: Contoso's own active claim
    assert_problem(duplicate, 409, "duplicate_claim")
    ineligible = api.claim_customer(known, claim_body(SECURITY, LEGACY))  # closed
    assert_problem(ineligible, 422, "engagement_closed")
    assert ineligible.body["engagements"] == [
        {"engagement_id": LEGACY, "reasons": [{"code": "engagement_closed", "message": ineligible.body["detail"]}]}
    ]
    assert claim_count(dynamodb) == before
    assert TableSnapshot(dynamodb).counter(SECURITY, KEY) is None
    assert api.claim_customer(known, claim_body(SECURITY)).status == 201


# ---------------------------------------------------------------- only the partner's own known customers (§1)


def test_a_customer_known_to_another_partner_is_not_found(
    api: LifecycleApi, known: str, dynamodb: DynamoDBClient, northwind: Caller
) -> None:
    before = claim_count(dynamodb)
    theirs = api.claim_customer(known, claim_body(SECURITY, location_id=NORTHWIND_DUBLIN), caller=northwind)
    theirs_body = claim_body(SECURITY, location_id=NORTHWIND_DUBLIN)
    unknown = api.claim_customer(UNKNOWN_CUSTOMER, theirs_body, caller=northwind)
    garbage = api.claim_customer("not-a-customer", theirs_body, caller=northwind)
    for answer in (theirs, unknown, garbage):
        assert_problem(answer, 404, "not_found")
        assert answer.body == unknown.body
        assert answer.headers == unknown.headers
    assert FABRIKAM_TENANT not in str(theirs.raw)
    assert claim_count(dynamodb) == before
    assert api.known_customers(caller=northwind).body == {"items": []}


def test_a_customer_that_never_consented_is_not_known(api: LifecycleApi, dynamodb: DynamoDBClient) -> None:
    api.add_claim()  # added, consent never granted
    tailspin = add_customer_body(
        identifier={"type": "tenant_id", "value": TAILSPIN_TENANT},
        engagement_ids=[SECURITY],
        tenant_mismatch_reason="the contact works for the parent company",
    )
    declined = api.declined(tailspin)
    assert api.claim(declined)["state"] == "consent_declined"
    before = claim_count(dynamodb)
    for customer_id in (KEY, f"tenant_id:{TAILSPIN_TENANT}"):
        assert_problem(api.claim_customer(customer_id, claim_body(DATA_ESTATE)), 404, "not_found")
    assert claim_count(dynamodb) == before


def test_a_percent_encoded_customer_id_is_the_same_customer(api: LifecycleApi, known: str) -> None:
    """Generated clients percent-encode path parameters (``tenant_id%3A...``, ``domain%3Afabrikam.com``) and
    API Gateway decodes the path before handing it on: the id is the known customer's all the same (issue 18)."""
    from urllib.parse import quote

    encoded = quote(known, safe="")
    assert encoded != known
    answer = api.claim_customer(encoded, claim_body(SECURITY))
    assert answer.status == 201, answer.body
    assert [claim["engagement_id"] for claim in answer.body["claims"]] == [SECURITY]


def test_a_customer_id_is_decoded_once_not_by_the_route_again(api: LifecycleApi, known: str) -> None:
    """API Gateway decodes the path once; the route takes the id as handed on. Encoded twice, the id the route
    reads still holds ``%3A``: no such customer (a second decode in the route would find the known one)."""
    from urllib.parse import quote

    twice = quote(quote(known, safe=""), safe="")
    assert_problem(api.claim_customer(twice, claim_body(SECURITY)), 404, "not_found")


# ---------------------------------------------------------------- add or claim, not both (rule 10), limits (rule 11)


def test_claiming_when_the_partner_already_has_an_active_claim_is_a_duplicate(
    api: LifecycleApi, dynamodb: DynamoDBClient
) -> None:
    added = api.granted()  # active (consent granted) and the customer is now known
    before = claim_count(dynamodb)
    answer = api.claim_customer(KEY, claim_body(MIGRATE))
    assert_problem(answer, 409, "duplicate_claim")
    assert answer.body["existing_claim_id"] == added
    assert added in answer.body["detail"]
    assert claim_count(dynamodb) == before


def test_adding_after_claiming_is_a_duplicate_too(api: LifecycleApi, known: str, dynamodb: DynamoDBClient) -> None:
    [claimed] = api.claim_customer(known, claim_body(SECURITY)).body["claims"]
    before = claim_count(dynamodb)
    for identifier in (
        {"type": "domain", "value": "fabrikam.com"},
        {"type": "tenant_id", "value": FABRIKAM_TENANT.upper()},
    ):
        answer = api.add(add_customer_body(identifier=identifier, engagement_ids=[SECURITY]))
        assert_problem(answer, 409, "duplicate_claim")
        assert answer.body["existing_claim_id"] == claimed["claim_id"]
    assert claim_count(dynamodb) == before


def test_once_the_claim_ends_the_customer_can_be_claimed_again(
    api: LifecycleApi, known: str, clock: FixedClock
) -> None:
    [claimed] = api.claim_customer(known, claim_body(SECURITY)).body["claims"]
    assert api.cancel(claimed["claim_id"]).status == 200
    again = api.claim_customer(known, claim_body(SECURITY))
    assert again.status == 201, again.body
    clock.advance(timedelta(days=30))  # the new claim lapses: claiming again expires it in the same write
    third = api.claim_customer(known, claim_body(SECURITY))
    assert third.status == 201, third.body
    assert api.claim(again.body["claims"][0]["claim_id"])["state"] == "expired"


def test_limits_apply_as_they_do_when_adding(
    api: LifecycleApi, known: str, dynamodb: DynamoDBClient, northwind: Caller
) -> None:
    assert api.add(northwind_body(engagement_ids=[SECURITY]), caller=northwind).status == 201  # limit 1
    before = claim_count(dynamodb)
    full = api.claim_customer(known, claim_body(SECURITY))
    assert_problem(full, 409, "active_claim_limit_reached")
    assert "existing_claim_id" not in full.body
    refusals = {
        "engagement_closed": claim_body(LEGACY),
        "identifier_type_not_accepted": claim_body(AI, hours=20),
        "location_not_enrolled": claim_body(SECURITY, location_id=CONTOSO_SEATTLE),
    }
    for code, body in refusals.items():
        assert_problem(api.claim_customer(known, body), 422, code)
    for body, field in (
        (claim_body(SECURITY, location_id=NORTHWIND_DUBLIN), "location_id"),
        (claim_body("e-no-such-engagement"), "engagement_ids[0]"),
        (claim_body(), "engagement_ids"),
        (claim_body(DATA_ESTATE, DATA_ESTATE), "engagement_ids"),
        (claim_body(DATA_ESTATE, hours=10), "hours"),
        ({**claim_body(DATA_ESTATE), "identifier": {"type": "tpid", "value": "1"}}, "identifier"),
        ({k: v for k, v in claim_body(DATA_ESTATE).items() if k != "friendly_name"}, "friendly_name"),
    ):
        answer = api.claim_customer(known, body)
        assert_problem(answer, 422, "validation_error")
        assert field in [e["field"] for e in answer.body["errors"]], (field, answer.body)
    assert claim_count(dynamodb) == before


def test_claiming_needs_an_incentives_role(api: LifecycleApi, known: str, lambda_context: Any) -> None:
    for roles in (["referral_admin"], ["mci_operations"]):
        caller = Caller("p-contoso-partners", roles, lambda_context)
        answer = api.claim_customer(known, claim_body(SECURITY), caller=caller)
        assert_problem(answer, 403, "forbidden")


# ---------------------------------------------------------------- Idempotency-Key (§4)


def test_an_idempotency_key_returns_the_first_claims_and_creates_nothing_more(
    api: LifecycleApi, known: str, dynamodb: DynamoDBClient
) -> None:
    first = api.claim_customer(known, claim_body(SECURITY, DATA_ESTATE), key="claim-fabrikam-1")
    assert first.status == 201, first.body
    count = claim_count(dynamodb)
    again = api.claim_customer(known, claim_body(SECURITY, DATA_ESTATE), key="claim-fabrikam-1")
    assert (again.status, again.body) == (201, first.body)
    assert claim_count(dynamodb) == count
    other_body = api.claim_customer(known, claim_body(SECURITY), key="claim-fabrikam-1")
    assert_problem(other_body, 422, "validation_error")
    assert other_body.body["errors"][0]["code"] == "idempotency_key_reused"
    other_customer = api.claim_customer(UNKNOWN_CUSTOMER, claim_body(SECURITY, DATA_ESTATE), key="claim-fabrikam-1")
    assert_problem(other_customer, 422, "validation_error")
    fresh_key = api.claim_customer(known, claim_body(SECURITY, DATA_ESTATE), key="claim-fabrikam-2")
    assert_problem(fresh_key, 409, "duplicate_claim")
    assert claim_count(dynamodb) == count
