"""The consent flow for tests: add a claim, request consent, read the link out of the email, call the page.

Two tiers share the vocabulary: ``ConsentApi`` drives the real handlers on moto, ``MemoryConsent`` drives
the consent services (``ConsentRequesting``, ``ConsentDecisions``, ``ConsentOutbox``) on the in-memory fakes
with a fixed clock. ``SesThrottle`` is the small fake for SES throttling: it answers a boto3 SES v2 client's
next sends with ``TooManyRequestsException``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.awsrequest import AWSResponse
from moto.backends import get_backend

from mci.adapters.memory import MemoryClaimRepository, MemoryMailer, MemoryReferenceRepository
from mci.domain.claims import Claim
from mci.domain.clock import FixedClock
from mci.domain.commands import AddCustomer, ConsentRequest
from mci.domain.consent import ConsentRequesting
from mci.domain.consent_decision import ConsentDecisions
from mci.domain.lookups import SeparateLookups
from mci.domain.nomination import Nominations
from mci.domain.outbox import ConsentOutbox
from mci.domain.principal import Principal
from tests.support.api import Answer, Caller
from tests.support.reference import CONTOSO, NORTHWIND, NORTHWIND_DUBLIN, NOW, add_customer_body, demo_data

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sesv2 import SESV2Client

ACCOUNT = "123456789012"
REGION = "us-east-1"
SENDER = "noreply@example.com"  # Settings.sender_email default
PUBLIC_BASE_URL = "https://consent.example"
FIRST_REQUEST: dict[str, Any] = {"deal_size_usd": 25000, "disclaimer_accepted": True}
LINK = re.compile(r"/consent/([A-Za-z0-9_-]+)")
INCENTIVES_USER = frozenset({"incentives_user"})


def token_in(text: str) -> str:
    """The token of the one consent link in an email body."""
    found = set(LINK.findall(text))
    assert len(found) == 1, f"expected one consent link, found {sorted(found)}"
    return found.pop()


def northwind_body(**overrides: Any) -> dict[str, Any]:
    """Northwind adding the same customer as ``add_customer_body`` (Fabrikam) from its own location."""
    return add_customer_body(
        location_id=NORTHWIND_DUBLIN,
        partner_contact={"name": "Kim Ode", "email": "kim@northwind.example"},
        **overrides,
    )


# ---------------------------------------------------------------- moto: SES


def verify_sender() -> None:
    """moto refuses to send from an unverified identity."""
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)


def sent_messages() -> list[Any]:
    """What moto's SES kept (SES v2 sends land in the v1 backend; with Text and Html only Html is kept)."""
    return list(get_backend("ses")[ACCOUNT][REGION].sent_messages)


def recipients(message: Any) -> list[str]:
    return list(message.destinations.get("ToAddresses", []))


class SesThrottle:
    """Answers the next ``times`` SendEmail calls of ``client`` as a throttling SES does (or with ``code``, as an
    SES that refuses: ``MessageRejected``, ``AccessDeniedException``...), keeping each request.

    It hooks the client's own ``before-call`` event (as botocore's Stubber does), so the request never
    reaches moto and the adapter under test sees a real ``ClientError``.
    """

    def __init__(
        self, client: SESV2Client, times: int = 1, code: str = "TooManyRequestsException", status: int = 429
    ) -> None:
        self.remaining = times
        self.code, self.status = code, status
        self.refused: list[dict[str, Any]] = []
        client.meta.events.register("before-call.sesv2.SendEmail", self._answer)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        self.refused.append(json.loads(params["body"]))
        error = {
            "Error": {"Code": self.code, "Message": f"SES refused the message ({self.code})."},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }
        return AWSResponse(params.get("url", ""), self.status, {}, None), error

    def refused_text(self, index: int = 0) -> str:
        body: str = self.refused[index]["Content"]["Simple"]["Body"]["Text"]["Data"]
        return body


# ---------------------------------------------------------------- moto: the table


def stored_item(dynamodb: DynamoDBClient, pk: str, sk: str) -> dict[str, Any] | None:
    found = dynamodb.get_item(TableName="ClaimsTable", Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True)
    return found.get("Item")


def stored_claim(dynamodb: DynamoDBClient, claim_id: str) -> dict[str, Any]:
    item = stored_item(dynamodb, f"CLAIM#{claim_id}", "CLAIM")
    assert item is not None, claim_id
    return item


def every_item(dynamodb: DynamoDBClient) -> list[dict[str, Any]]:
    """Every item of every table, as stored."""
    found: list[dict[str, Any]] = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            found += page["Items"]
    return found


# ---------------------------------------------------------------- moto: the routes


@dataclass
class ConsentApi:
    """The partner's consent routes and the public page, through the real handlers."""

    partner: Caller
    public: Caller

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        as_: Caller | None = None,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = None,
    ) -> Answer:
        """``POST path`` as ``as_`` (the partner by default), routed by the template; ``key`` the Idempotency-Key."""
        sent = {**(headers or {}), **({"idempotency-key": key} if key else {})}
        return (as_ or self.partner).post(path, body, raw_body=raw_body, headers=sent or None)

    def get(self, path: str, *, as_: Caller | None = None, query: dict[str, str] | None = None) -> Answer:
        """``GET path`` as ``as_`` (the partner by default), routed by the template."""
        return (as_ or self.partner).get(path, query=query)

    def add_claim(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        answer = self.post("/customers", body or add_customer_body(), as_=caller)
        assert answer.status == 201, answer.body
        claim_id: str = answer.body["claims"][0]["claim_id"]
        return claim_id

    def request(
        self, claim_id: str, body: dict[str, Any] | None = None, *, key: str | None = None, caller: Caller | None = None
    ) -> Answer:
        return self.post(f"/claims/{claim_id}/consent-requests", {} if body is None else body, as_=caller, key=key)

    def requested(self, claim_id: str, body: dict[str, Any] | None = None) -> str:
        """Request consent (the first request by default) and return the token of the email just sent."""
        before = len(sent_messages())
        answer = self.request(claim_id, FIRST_REQUEST if body is None else body)
        assert answer.status == 200, answer.body
        messages = sent_messages()
        assert len(messages) == before + 1
        return token_in(str(messages[-1].body))

    def get_claim(self, claim_id: str, caller: Caller | None = None) -> Answer:
        return self.get(f"/claims/{claim_id}", as_=caller)

    def claim(self, claim_id: str) -> dict[str, Any]:
        answer = self.get_claim(claim_id)
        assert answer.status == 200, answer.body
        body: dict[str, Any] = answer.body
        return body

    def known_customers(self, caller: Caller | None = None) -> Answer:
        return self.get("/known-customers", as_=caller)

    def page(self, token: str, method: str = "GET", form: str | None = None) -> Answer:
        headers = {"content-type": "application/x-www-form-urlencoded"} if method == "POST" else {}
        return self.public.request(method, f"/consent/{token}", raw_body=form, headers=headers)

    def decide(self, token: str, decision: str) -> Answer:
        return self.page(token, "POST", f"decision={decision}")


# ---------------------------------------------------------------- memory tier


def principal(partner_id: str = CONTOSO) -> Principal:
    return Principal(partner_id=partner_id, roles=INCENTIVES_USER, user_id="user-1")


@dataclass
class MemoryConsent:
    """The consent services and Nominations over the in-memory fakes, sharing one fixed clock."""

    clock: FixedClock = field(default_factory=lambda: FixedClock(NOW))
    reference: MemoryReferenceRepository = field(default_factory=lambda: MemoryReferenceRepository(demo_data()))
    claims: MemoryClaimRepository = field(default_factory=MemoryClaimRepository)
    mailer: MemoryMailer = field(default_factory=MemoryMailer)

    def __post_init__(self) -> None:
        lookups = SeparateLookups(self.reference, get_referral=self.claims.get_referral)
        self.outbox = ConsentOutbox(
            self.claims, self.mailer, self.clock, lookups, public_base_url=PUBLIC_BASE_URL, sleep=lambda _: None
        )
        self.requests = ConsentRequesting(
            claims=self.claims, clock=self.clock, lookups=lookups, outbox=self.outbox, sleep=lambda _: None
        )
        self.decisions = ConsentDecisions(
            claims=self.claims, clock=self.clock, lookups=lookups, outbox=self.outbox, sleep=lambda _: None
        )
        self.nominations = Nominations(
            reference=self.reference, claims=self.claims, clock=self.clock, sleep=lambda _: None
        )

    def add_claim(self, partner_id: str = CONTOSO, **overrides: Any) -> Claim:
        body = northwind_body(**overrides) if partner_id == NORTHWIND else add_customer_body(**overrides)
        return self.nominations.add_customer(principal(partner_id), AddCustomer.model_validate(body))[0]

    def request(self, claim_id: str, partner_id: str = CONTOSO, **fields: Any) -> Claim:
        return self.requests.request(principal(partner_id), claim_id, ConsentRequest.model_validate(fields))

    def requested(self, claim_id: str, **fields: Any) -> str:
        """Request consent (the first request unless fields are given); the token of the email just sent."""
        before = len(self.mailer.sent)
        self.request(claim_id, **(fields or FIRST_REQUEST))
        assert len(self.mailer.sent) == before + 1
        return token_in(self.mailer.sent[-1].text)

    def stored(self, claim_id: str) -> Claim:
        claim = self.claims.get_claim(claim_id)
        assert claim is not None
        return claim

    def at(self, moment: datetime) -> None:
        """Move the clock forward to ``moment``."""
        assert moment >= self.clock.now()
        self.clock.advance(moment - self.clock.now())


def consent_api(context: Any, partner_id: str = CONTOSO) -> ConsentApi:
    """The API as ``partner_id`` and as the public, with the SES sender verified (moto must be active)."""
    verify_sender()
    return ConsentApi(Caller(partner_id, ["incentives_user"], context), Caller(None, [], context))
