"""Who may do what, over HTTP: the access-matrix vocabulary, and an in-process local stack for the attack suites.

The access matrix (``tests/e2e/test_access_matrix.py``) crosses every route of template.yaml with the ways a
request can lack the right to act (``CASES``) and reads the answer it must get from ``ACCESS_TABLE``: one
explicit entry per route key (``"METHOD /path"``) naming the roles the route accepts, a request that would
be valid for its owner, and how another partner asking for the owner's resource is answered.

The suites run the real handlers behind ``local.stack.LocalStack`` (the authorizer emulation included) in
this process, so they can read moto's tables at ``stack.moto_url`` and issue tokens with
``stack.tokens.issue``. ``StackSession`` puts the stack's environment back for each test: the root
``aws_environment`` fixture resets it (and drops ``AWS_ENDPOINT_URL``) before every test.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import boto3
import jwt
import pytest

from functions.table import route_roles
from local import server
from local.answers import Answer
from local.api_stack import reset_services as _reset_services
from local.aws_env import REGION
from local.stack import LocalStack
from local.tokens import ALGORITHM, generate_key, scopes_for
from mci.domain.principal import OPERATIONS_PARTNER_ID
from tests.support.consent import token_in
from tests.support.reference import (
    AI,
    CONTOSO,
    CONTOSO_MADRID,
    CONTOSO_SEATTLE,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    SECURITY,
)

OPERATIONS = OPERATIONS_PARTNER_ID  # the partner id of programme operations' tokens (local.api_stack)
UNKNOWN_LOCATION = "9999999"
INCENTIVES_USER = "incentives_user"
INCENTIVES_ADMIN = "incentives_admin"
REFERRAL_ADMIN = "referral_admin"
MCI_OPERATIONS = "mci_operations"
ALL_ROLES = frozenset({INCENTIVES_USER, INCENTIVES_ADMIN, REFERRAL_ADMIN, MCI_OPERATIONS})
PARTNER_ROLES = frozenset({INCENTIVES_USER, INCENTIVES_ADMIN, REFERRAL_ADMIN})
GATEWAY_401 = {"message": "Unauthorized"}
GATEWAY_403 = {"message": "Forbidden"}  # a valid token without one of the route's AuthorizationScopes
PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")
PROBLEM_JSON = "application/problem+json"
FORM = "application/x-www-form-urlencoded"


# ---------------------------------------------------------------- HTTP


def send(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    authorization: str | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> Answer:
    """One request; every status comes back as an Answer. ``body`` bytes are sent as they are."""
    sent: dict[str, str] = {}
    data: bytes | None = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent["Content-Type"] = content_type
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        sent["Authorization"] = authorization
    sent.update(headers or {})
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer.of_http(response.status, response.headers.items(), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer.of_http(error.code, error.headers.items(), error.read())


def problem_shape(answer: Answer, status: int) -> list[str]:
    """What is wrong with ``answer`` as an RFC 9457 problem of ``status`` (empty when nothing)."""
    found: list[str] = []
    if answer.status != status:
        found.append(f"status {answer.status}, expected {status}")
    if answer.content_type != PROBLEM_JSON:
        found.append(f"Content-Type {answer.content_type!r}, expected {PROBLEM_JSON}")
        return found
    try:
        body = answer.json()
    except ValueError:
        return [*found, "the body is not JSON"]
    if not isinstance(body, dict):
        return [*found, "the body is not a JSON object"]
    missing = [name for name in PROBLEM_FIELDS if not isinstance(body.get(name), str | int) or body.get(name) == ""]
    if missing:
        found.append(f"problem fields missing or empty: {missing}")
    if body.get("status") != answer.status:
        found.append(f"problem status {body.get('status')!r} differs from the HTTP status {answer.status}")
    return found


# ---------------------------------------------------------------- the in-process stack


_request_log = logging.getLogger("local.server.requests")


def _log_request_line(*values: object, **_: object) -> None:
    _request_log.debug(" ".join(str(value) for value in values))


@contextlib.contextmanager
def running_stack() -> Iterator[LocalStack]:
    """A LocalStack on a free loopback port, demo data loaded, no background work (the sweep would write).

    Its one line per request goes to the ``local.server.requests`` logger (DEBUG) instead of stdout: the
    server thread prints after answering, often once pytest has stopped capturing the test.
    """
    # moto's backends are this process's globals and outlive a stopped stack: an earlier in-process stack's
    # claims would still be in the tables. Start from empty ones, as POST /moto-api/reset does.
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCAL_SWEEP_SECONDS", "0")
        patch.setenv("LOCAL_EVENTS_POLL_SECONDS", "0")  # the stream publisher only when its page is read
        patch.setenv("POWERTOOLS_LOG_LEVEL", "ERROR")
        patch.setattr(server, "print", _log_request_line, raising=False)
        stack = LocalStack(port=0)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def use_stack_environment(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the handlers at the stack's moto and clock again, for one test (undone by ``monkeypatch``)."""
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    _reset_services(clock=stack.clock)


class StateProbe:
    """Everything a refused request must leave alone: every table of the template, and the sent emails."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.client = boto3.client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=stack.moto_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def tables(self) -> dict[str, list[str]]:
        """Table name -> every item (Scan), as sorted canonical JSON."""
        found: dict[str, list[str]] = {}
        for table in sorted(self.stack.table_names.values()):
            items: list[str] = []
            for page in self.client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                items.extend(json.dumps(item, sort_keys=True) for item in page["Items"])
            found[table] = sorted(items)
        return found

    def emails(self) -> int:
        answer = send(self.stack.url, "GET", "/_local/mailbox.json")
        assert answer.status == 200, answer.text
        return len(answer.json()["items"])

    def capture(self) -> dict[str, Any]:
        return {"tables": self.tables(), "emails": self.emails()}


def describe_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """A short account of what differs between two captures."""
    lines: list[str] = []
    if before["emails"] != after["emails"]:
        lines.append(f"emails sent: {before['emails']} -> {after['emails']}")
    for table in sorted(set(before["tables"]) | set(after["tables"])):
        old, new = set(before["tables"].get(table, [])), set(after["tables"].get(table, []))
        lines.extend(f"{table} + {item[:300]}" for item in sorted(new - old))
        lines.extend(f"{table} - {item[:300]}" for item in sorted(old - new))
    return "\n".join(lines)


# ---------------------------------------------------------------- tokens the authorizer must refuse


def _segment(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class Case(StrEnum):
    """One way a request lacks the right to act."""

    NO_TOKEN = "no_token"
    MALFORMED_TOKEN = "malformed_token"
    EXPIRED_TOKEN = "expired_token"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    ALG_NONE = "alg_none"
    FOREIGN_KEY = "foreign_key"  # right header and claims, signed by a key the issuer never published
    MISSING_ROLE = "missing_role"
    OTHER_PARTNER = "other_partner"
    # Issue 12: a partner role beside mci_operations (rule 30), and a roles claim in a shape the authorizer
    # never produces (or naming a role its scopes do not back).
    MIXED_ROLES = "mixed_roles"
    WRONG_SHAPE_ROLES = "wrong_shape_roles"


CASES: tuple[Case, ...] = tuple(Case)
ROLE_CASES = frozenset({Case.MISSING_ROLE, Case.OTHER_PARTNER, Case.MIXED_ROLES, Case.WRONG_SHAPE_ROLES})
TOKEN_CASES = frozenset(CASES) - ROLE_CASES


def gateway_forbids(route_scopes: tuple[str, ...], roles: frozenset[str]) -> bool:
    """API Gateway answers 403 itself: the route needs a scope the identity provider issues for none of ``roles``."""
    return bool(route_scopes) and not set(scopes_for(sorted(roles))) & set(route_scopes)


def mixed_role_callers() -> list[tuple[str, frozenset[str]]]:
    """(partner_id, roles) of the tokens that hold mci_operations beside a partner role, or name a partner
    organisation: partner A acting as operations on its own resources, and the operations organisation with a
    partner role."""
    callers = [(PARTNER_A, frozenset({role, MCI_OPERATIONS})) for role in sorted(PARTNER_ROLES)]
    return [
        *callers,
        (OPERATIONS, frozenset({INCENTIVES_ADMIN, MCI_OPERATIONS})),
        (PARTNER_A, frozenset({MCI_OPERATIONS})),
    ]


def wrong_shape_roles(roles: frozenset[str]) -> list[Any]:
    """Roles claims naming one of ``roles`` in a shape the HTTP API authorizer never hands a Lambda (a JSON
    text, commas, nested brackets, padding); as JWT claims, lists are flattened to ``[...]`` on the way."""
    role = sorted(roles)[0]
    return [f'["{role}"]', f"x,{role}", [f"x,{role}"], [[role]], [f"[{role}]"], f" {role}", f"[{role}]x"]


def refused_authorization(stack: LocalStack, case: Case, partner_id: str, roles: frozenset[str]) -> str | None:
    """The Authorization header of a token case (None: no header). Claims are otherwise those of a valid caller."""
    issuer = stack.tokens
    role_list = sorted(roles)
    if case is Case.NO_TOKEN:
        return None
    if case is Case.MALFORMED_TOKEN:
        return "Bearer not-a-jwt"
    if case is Case.EXPIRED_TOKEN:
        return "Bearer " + issuer.issue(partner_id, role_list, expires_in=-60)
    if case is Case.WRONG_ISSUER:
        return "Bearer " + issuer.issue(partner_id, role_list, extra_claims={"iss": "https://issuer.invalid/_local"})
    if case is Case.WRONG_AUDIENCE:
        return "Bearer " + issuer.issue(partner_id, role_list, extra_claims={"aud": "another-api"})
    if case is Case.ALG_NONE:
        claims = jwt.decode(issuer.issue(partner_id, role_list), options={"verify_signature": False})
        return f"Bearer {_segment({'alg': 'none', 'typ': 'JWT', 'kid': issuer.key_id})}.{_segment(claims)}."
    if case is Case.FOREIGN_KEY:
        claims = jwt.decode(issuer.issue(partner_id, role_list), options={"verify_signature": False})
        forged = jwt.encode(claims, generate_key(), algorithm=ALGORITHM, headers={"kid": issuer.key_id})
        return f"Bearer {forged}"
    raise ValueError(f"{case} is not a token case")


# ---------------------------------------------------------------- the resources the cases aim at


@dataclass(frozen=True)
class World:
    """Partner A's resources, made through the real API before the matrix runs (see ``build_world``)."""

    claim_id: str
    referral_id: str
    customer_id: str
    used_consent_token: str
    a_location: str = CONTOSO_MADRID
    a_locations: frozenset[str] = frozenset({CONTOSO_MADRID, CONTOSO_SEATTLE})


def build_world(stack: LocalStack) -> World:
    """As partner A (Contoso): add Fabrikam to e-azure-migrate, request consent with a deal of 25000 USD
    (above the referral threshold: a referral), accept it from the link in the local mailbox (Fabrikam
    becomes a known customer), and keep the used link."""
    url = stack.url
    token = stack.tokens.issue(CONTOSO, [INCENTIVES_USER])
    contact = f"ana.{uuid.uuid4().hex[:8]}@fabrikam.com"
    added = send(url, "POST", "/customers", add_customer_request(contact=contact), token=token)
    assert added.status == 201, added.text
    (claim,) = added.json()["claims"]
    claim_id = str(claim["claim_id"])
    requested = send(url, "POST", f"/claims/{claim_id}/consent-requests", FIRST_CONSENT_REQUEST, token=token)
    assert requested.status == 200, requested.text
    referral_id = requested.json()["referral_id"]
    assert referral_id, f"a deal of 25000 USD on {MIGRATE} must create a referral: {requested.text}"
    mailbox = send(url, "GET", "/_local/mailbox.json").json()["items"]
    (email,) = [item for item in mailbox if item["to"] == contact]
    consent_token = token_in(email["html"] or email["text"])
    accepted = send(url, "POST", f"/consent/{consent_token}", b"decision=accept", content_type=FORM)
    assert accepted.status == 200, accepted.text
    known = send(url, "GET", "/known-customers", token=token)
    assert known.status == 200, known.text
    customer_ids = [item["customer_id"] for item in known.json()["items"]]
    assert len(customer_ids) == 1, known.text
    return World(
        claim_id=claim_id,
        referral_id=str(referral_id),
        customer_id=str(customer_ids[0]),
        used_consent_token=consent_token,
    )


FIRST_CONSENT_REQUEST: dict[str, Any] = {"deal_size_usd": 25000, "disclaimer_accepted": True}


def add_customer_request(location_id: str = CONTOSO_MADRID, contact: str = "olivia@wideworldimporters.com") -> Any:
    """A valid add-customer body; the matrix aims it at Wide World Importers, the world at Fabrikam."""
    fabrikam = contact.endswith("@fabrikam.com")
    return {
        "friendly_name": "Fabrikam migration" if fabrikam else "Wide World Importers workshop",
        "location_id": location_id,
        "identifier": {"type": "domain", "value": "fabrikam.com" if fabrikam else "wideworldimporters.com"},
        "engagement_ids": [MIGRATE if fabrikam else SECURITY],
        "customer_contact": {"name": "Ana García", "email": contact, "language": "es"},
        "partner_contact": {"name": "Sam Lee", "email": "sam@contoso-partners.com"},
    }


def eligibility_request(location_id: str = CONTOSO_MADRID) -> Any:
    return {"location_id": location_id, "identifier": {"type": "domain", "value": "fabrikam.com"}}


def quote_request(location_id: str = CONTOSO_MADRID) -> Any:
    return {"engagement_id": AI, "location_id": location_id, "msx_opportunity_id": "7-ABC123XYZ", "hours": 20}


def claim_known_request(location_id: str = CONTOSO_MADRID) -> Any:
    return {"friendly_name": "Fabrikam security", "location_id": location_id, "engagement_ids": [SECURITY]}


def reference_data_request() -> Any:
    """Upserts one demo location as it already is (refused requests must not even do that)."""
    return {
        "locations": [
            {
                "location_id": NORTHWIND_DUBLIN,
                "partner_id": NORTHWIND,
                "name": "Northwind Consulting Dublin",
                "enrolled_in_mci": True,
                "eligible_engagements": [MIGRATE, SECURITY],
            }
        ]
    }


# ---------------------------------------------------------------- the expectation table


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any = None
    content_type: str = "application/json"


RequestFor = Callable[[World], Request]


@dataclass(frozen=True)
class NotFoundLikeUnknown:
    """Partner B asking for A's resource gets the 404 it gets for an id that does not exist, byte for byte."""

    unknown: RequestFor


@dataclass(frozen=True)
class RefusedLikeUnknown:
    """Partner B naming A's location in a body gets the answer an unknown location gets, byte for byte."""

    unknown: RequestFor
    status: int = 422


@dataclass(frozen=True)
class OnlyOwnData:
    """A list: partner B's answer (200) holds nothing of partner A's. ``leaks`` names what it found."""

    leaks: Callable[[Any, World], list[str]]


@dataclass(frozen=True)
class NotApplicable:
    """The case has no meaning for this route; the reason is part of the table."""

    reason: str


@dataclass(frozen=True)
class NeutralPage:
    """A public consent page: whatever the Authorization header, an unknown or used link gets the one
    neutral 404 page, uncached and unreferred."""


OtherPartner = NotFoundLikeUnknown | RefusedLikeUnknown | OnlyOwnData | NotApplicable | NeutralPage


@dataclass(frozen=True)
class RouteRules:
    """What a route demands: ``roles`` it accepts (None: public, no authorizer; from functions/table.py), the
    request its owner (partner A) could send, and how partner B is answered for A's resource (``other_partner``)."""

    request: RequestFor
    other_partner: OtherPartner
    caller: str = CONTOSO  # whose otherwise valid token the token cases spoil
    as_other: RequestFor | None = None  # what partner B sends for A's resource (default: ``request``)
    # True when ``request`` changes nothing even when it succeeds: the other-partner case then also sends it
    # as partner A, whose 2xx shows B's refusal is about ownership and not a request that fails anyway.
    read_only: bool = False
    roles: frozenset[str] | None = None  # set from functions/table.py in ACCESS_TABLE

    @property
    def public(self) -> bool:
        return self.roles is None

    @property
    def missing_roles(self) -> frozenset[str]:
        """Every role the route does not accept: the strongest token that must still get 403."""
        return ALL_ROLES - (self.roles or frozenset())


def _unknown_id() -> str:
    return str(uuid.uuid4())


def _unknown_customer(world: World) -> str:
    """A customer id shaped like the real one (``<type>:<value>``) that no partner knows."""
    kind, _, _ = world.customer_id.partition(":")
    return f"{kind}:{_unknown_id()}"


def _none_of(key: str, values: Callable[[World], set[str]]) -> Callable[[Any, World], list[str]]:
    def leaks(body: Any, world: World) -> list[str]:
        owned = values(world)
        return [f"{key}={item.get(key)!r}" for item in body["items"] if item.get(key) in owned]

    return leaks


def _engagements_of_b(body: Any, world: World) -> list[str]:
    # Northwind Dublin is eligible for e-azure-migrate and e-security-workshop only; e-ai-accelerate is
    # open to Contoso Madrid alone.
    return [f"engagement_id={item['engagement_id']!r}" for item in body["items"] if item["engagement_id"] == AI]


def _page_of_b(body: Any, world: World) -> list[str]:
    found = [f"claim_id={item.get('claim_id')!r}" for item in body["items"] if item.get("claim_id") == world.claim_id]
    found += [
        f"customer_id={item.get('customer_id')!r}"
        for item in body["items"]
        if item.get("customer_id") == world.customer_id
    ]
    return found


def _claim_path(suffix: str = "") -> Callable[[str], str]:
    return lambda claim_id: f"/claims/{claim_id}{suffix}"


def _post(path: Callable[[World], str], body: Any) -> RequestFor:
    return lambda world: Request("POST", path(world), body)


def _get(path: Callable[[World], str]) -> RequestFor:
    return lambda world: Request("GET", path(world))


def _consent(method: str) -> Callable[[Callable[[World], str]], RequestFor]:
    def build(token: Callable[[World], str]) -> RequestFor:
        body = b"decision=accept" if method == "POST" else None
        return lambda world: Request(method, f"/consent/{token(world)}", body, FORM)

    return build


_OPS_NOT_APPLICABLE = NotApplicable("operations act on every partner's data by design (SPEC §1); no partner owns it")

# Route key -> the request its owner sends and how another partner is answered. Every route of template.yaml
# needs an entry, and every entry a route; the roles each accepts are functions/table.py's (ACCESS_TABLE).
_ROUTE_REQUESTS: dict[str, RouteRules] = {
    "GET /engagements": RouteRules(
        request=_get(lambda w: "/engagements"),
        other_partner=OnlyOwnData(_engagements_of_b),
        read_only=True,
    ),
    "GET /locations": RouteRules(
        request=_get(lambda w: "/locations"),
        other_partner=OnlyOwnData(_none_of("location_id", lambda w: set(w.a_locations))),
        read_only=True,
    ),
    "POST /eligibility-checks": RouteRules(
        request=lambda w: Request("POST", "/eligibility-checks", eligibility_request(w.a_location)),
        other_partner=RefusedLikeUnknown(
            lambda w: Request("POST", "/eligibility-checks", eligibility_request(UNKNOWN_LOCATION))
        ),
        read_only=True,
    ),
    "POST /payment-quotes": RouteRules(
        request=lambda w: Request("POST", "/payment-quotes", quote_request(w.a_location)),
        other_partner=RefusedLikeUnknown(lambda w: Request("POST", "/payment-quotes", quote_request(UNKNOWN_LOCATION))),
        read_only=True,
    ),
    "POST /customers": RouteRules(
        request=lambda w: Request("POST", "/customers", add_customer_request(w.a_location)),
        other_partner=RefusedLikeUnknown(
            lambda w: Request("POST", "/customers", add_customer_request(UNKNOWN_LOCATION))
        ),
    ),
    "GET /known-customers": RouteRules(
        request=_get(lambda w: "/known-customers"),
        other_partner=OnlyOwnData(_none_of("customer_id", lambda w: {w.customer_id})),
        read_only=True,
    ),
    "POST /known-customers/{customer_id}/claims": RouteRules(
        request=lambda w: Request("POST", f"/known-customers/{w.customer_id}/claims", claim_known_request()),
        other_partner=NotFoundLikeUnknown(
            lambda w: Request(
                "POST", f"/known-customers/{_unknown_customer(w)}/claims", claim_known_request(NORTHWIND_DUBLIN)
            )
        ),
        as_other=lambda w: Request(
            "POST", f"/known-customers/{w.customer_id}/claims", claim_known_request(NORTHWIND_DUBLIN)
        ),
    ),
    "GET /engagements/{engagement_id}/customers": RouteRules(
        request=_get(lambda w: f"/engagements/{MIGRATE}/customers"),
        other_partner=OnlyOwnData(_page_of_b),
        read_only=True,
    ),
    "GET /attention-items": RouteRules(
        request=_get(lambda w: "/attention-items"),
        other_partner=OnlyOwnData(_page_of_b),
        read_only=True,
    ),
    "GET /claims/{claim_id}": RouteRules(
        request=_get(lambda w: f"/claims/{w.claim_id}"),
        other_partner=NotFoundLikeUnknown(_get(lambda w: f"/claims/{_unknown_id()}")),
        read_only=True,
    ),
    "POST /claims/{claim_id}/consent-requests": RouteRules(
        request=_post(lambda w: f"/claims/{w.claim_id}/consent-requests", FIRST_CONSENT_REQUEST),
        other_partner=NotFoundLikeUnknown(
            _post(lambda w: f"/claims/{_unknown_id()}/consent-requests", FIRST_CONSENT_REQUEST)
        ),
    ),
    "POST /claims/{claim_id}/submission": RouteRules(
        request=_post(lambda w: f"/claims/{w.claim_id}/submission", {"notes": "Workshop delivered"}),
        other_partner=NotFoundLikeUnknown(
            _post(lambda w: f"/claims/{_unknown_id()}/submission", {"notes": "Workshop delivered"})
        ),
    ),
    "POST /claims/{claim_id}/cancellation": RouteRules(
        request=_post(lambda w: f"/claims/{w.claim_id}/cancellation", {"reason": "Customer changed plans"}),
        other_partner=NotFoundLikeUnknown(
            _post(lambda w: f"/claims/{_unknown_id()}/cancellation", {"reason": "Customer changed plans"})
        ),
    ),
    "GET /referrals/{referral_id}": RouteRules(
        request=_get(lambda w: f"/referrals/{w.referral_id}"),
        other_partner=NotFoundLikeUnknown(_get(lambda w: f"/referrals/{_unknown_id()}")),
        read_only=True,
    ),
    "POST /ops/reference-data": RouteRules(
        request=lambda w: Request("POST", "/ops/reference-data", reference_data_request()),
        other_partner=_OPS_NOT_APPLICABLE,
        caller=OPERATIONS,
    ),
    "POST /ops/claims/{claim_id}/review": RouteRules(
        request=_post(lambda w: f"/ops/claims/{w.claim_id}/review", {"decision": "complete", "reason": "Verified"}),
        other_partner=_OPS_NOT_APPLICABLE,
        caller=OPERATIONS,
    ),
    "GET /consent/{token}": RouteRules(
        request=_consent("GET")(lambda w: _unknown_id().replace("-", "")),
        other_partner=NeutralPage(),
    ),
    "HEAD /consent/{token}": RouteRules(
        request=_consent("HEAD")(lambda w: _unknown_id().replace("-", "")),
        other_partner=NeutralPage(),
    ),
    "POST /consent/{token}": RouteRules(
        request=_consent("POST")(lambda w: _unknown_id().replace("-", "")),
        other_partner=NeutralPage(),
    ),
}

# The rules of each route with the roles the one table (functions/table.py) says it accepts: the table writes the
# template's scopes, the matrix proves the handlers refuse every other role.
ACCESS_TABLE: dict[str, RouteRules] = {
    key: replace(rules, roles=route_roles()[key]) for key, rules in _ROUTE_REQUESTS.items()
}

PARTNER_A = CONTOSO
PARTNER_B = NORTHWIND

# The public routes' "other partner's resource": the link partner A's customer already used.
USED_LINK: dict[str, RequestFor] = {
    "GET /consent/{token}": _consent("GET")(lambda w: w.used_consent_token),
    "HEAD /consent/{token}": _consent("HEAD")(lambda w: w.used_consent_token),
    "POST /consent/{token}": _consent("POST")(lambda w: w.used_consent_token),
}


def route_key(method: str, path: str) -> str:
    return f"{method.upper()} {path}"
