"""One synthetic, valid request of a write route, run end to end before a SnapStart snapshot (issue 16, item 3).

The priming requests of ``mci.snapstart.prime`` stop before any AWS call (401, 422); the write paths' own code
(the use case, the domain's rules and transitions, the adapters and their item conversions) then ran for the first
time in the first real request. ``prime_end_to_end`` runs one valid request of each route listed here through the
resolver, with the function's DynamoDB client answered from a ``PrimingTable`` in this process (a synthetic
partner, location, engagement and customer written through the real reference repository, and a claim added
through the real use case where the route needs one) and every other client it has answered with canned ones.

What it must never do, each checked by ``tests/unit/test_snapstart.py``:
- send anything: every client the function created is answered in the process while it runs;
- count a business metric or print an EMF line: the wiring's metrics are none while it runs, and the function's
  factories are built again afterwards with the metrics in use before it, the real ones on Lambda (the funnel
  counts each real event once);
- log: a filter on our logger drops its lines below WARNING while it runs, so a successful priming writes no line;
- fail the init: it is best effort. A route that answers other than its success (2xx) is logged once at WARNING with
  its route and status, and not requested again; an exception (in the seed or a request) stops it, its cleanup still
  runs, and one WARNING names the step and the error's type (never its message, which may quote data); either way
  the hook returns and Lambda publishes the version, primed as far as it went;
- leave state: the synthetic world lives in the table object, dropped afterwards; the logger's keys are cleared (and
  ``mci.snapstart.prime`` drops the resolver's last request and context);
  no Idempotency-Key is sent (Powertools idempotency is primed apart, ``mci.http.idempotency.prime``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    from mci.adapters.aws_priming import PrimingTable

PARTNER = "snapstart-prime-partner"
LOCATION = "0000000"
ENGAGEMENT = "e-snapstart-prime"
DOMAIN = "snapstart-prime.invalid"
TENANT = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class World:
    """What the synthetic world holds for the requests: its reference data, a claim when a route needs one."""

    reference: dict[str, Any]
    claim_id: str = ""
    token: str = ""  # the consent link's, read from the email priming "sent"


@dataclass(frozen=True)
class Request:
    """A route's valid request in the world: its path parameters, body, and whether MCI operations sends it."""

    parameters: dict[str, str] = field(default_factory=dict)
    body: Any = None
    operations: bool = False
    form: str | None = None  # a form body instead of JSON (the consent page's decision)


def _add_customer_body() -> dict[str, Any]:
    return {
        "friendly_name": "SnapStart priming",
        "location_id": LOCATION,
        "identifier": {"type": "domain", "value": DOMAIN},
        "engagement_ids": [ENGAGEMENT],
        "customer_contact": {"name": "Priming", "email": f"customer@{DOMAIN}", "language": "en"},
        "partner_contact": {"name": "Priming", "email": f"partner@{DOMAIN}"},
    }


def _the_claim(world: World) -> Request:
    return Request(parameters={"claim_id": world.claim_id})


# Route key -> its request in the world. A route not listed keeps only the early priming request.
REQUESTS: dict[str, Callable[[World], Request]] = {
    "POST /customers": lambda _: Request(body=_add_customer_body()),
    "POST /claims/{claim_id}/cancellation": lambda w: Request({"claim_id": w.claim_id}, {"reason": "SnapStart"}),
    "POST /ops/reference-data": lambda w: Request(body=w.reference, operations=True),
    "GET /engagements": lambda _: Request(),
    "GET /locations": lambda _: Request(),
    "GET /known-customers": lambda _: Request(),
    "GET /attention-items": lambda _: Request(),
    "GET /claims/{claim_id}": _the_claim,
    "GET /engagements/{engagement_id}/customers": lambda _: Request(parameters={"engagement_id": ENGAGEMENT}),
    "POST /eligibility-checks": lambda _: Request(
        body={"location_id": LOCATION, "identifier": {"type": "domain", "value": DOMAIN}}
    ),
    "POST /claims/{claim_id}/consent-requests": lambda w: Request(
        {"claim_id": w.claim_id}, {"deal_size_usd": 20000, "disclaimer_accepted": True}
    ),
    "GET /consent/{token}": lambda w: Request({"token": w.token}),
    "HEAD /consent/{token}": lambda w: Request({"token": w.token}),
    "POST /consent/{token}": lambda w: Request({"token": w.token}, form="decision=accept"),
    "POST /claims/{claim_id}/submission": lambda w: Request({"claim_id": w.claim_id}, {"notes": "SnapStart"}),
    "POST /ops/claims/{claim_id}/review": lambda w: Request(
        {"claim_id": w.claim_id}, {"decision": "complete", "reason": "SnapStart"}, operations=True
    ),
}
# How far the synthetic claim goes for a route: added, consent requested (a link), granted, submitted.
ADDED, REQUESTED, GRANTED, SUBMITTED = 1, 2, 3, 4
NEEDS = {
    "POST /claims/{claim_id}/cancellation": ADDED,
    "GET /claims/{claim_id}": ADDED,
    "POST /claims/{claim_id}/consent-requests": ADDED,
    "GET /consent/{token}": REQUESTED,
    "HEAD /consent/{token}": REQUESTED,
    "POST /consent/{token}": REQUESTED,
    "POST /claims/{claim_id}/submission": GRANTED,
    "POST /ops/claims/{claim_id}/review": SUBMITTED,
}
_LINK = re.compile(r"/consent/([A-Za-z0-9_-]{43})")
# CPython specialises a function's bytecode for the types it meets only after it has run several times (3.11: 8
# calls before the adaptive instructions, which then specialise as they run): a path run once before the snapshot
# still runs generic bytecode in the first request. Each round runs the seed and every request in a new world.
ROUNDS = 10


def routes_primed(app: APIGatewayHttpResolver) -> list[tuple[str, str]]:
    """(method, path) of the function's routes that have a request here."""
    from mci.snapstart import routes

    found = [(route.method, route.openapi_path) for route in routes(app)]
    return [(method, path) for method, path in found if f"{method} {path}" in REQUESTS]


def prime_end_to_end(app: APIGatewayHttpResolver, factories: tuple[Callable[[], object], ...]) -> dict[str, int]:
    """Each listed route's answer to its valid request (201, 200), run as described above."""
    from aws_lambda_powertools.logging import logger as powertools_logging

    from mci import wiring
    from mci.adapters.aws_priming import PrimingTable
    from mci.domain.metrics import NO_METRICS
    from mci.snapstart import aws_calls

    primed = routes_primed(app)
    if not primed:
        return {}
    answers: dict[str, int] = {}
    unexpected: dict[str, int] = {}  # a route's first answer other than its success: logged once, not per round
    level = max(NEEDS.get(f"{m} {p}", 0) for m, p in primed)
    services = set(aws_calls(app, [factory() for factory in factories]))  # the clients it calls
    extra = {"sesv2"} if level >= REQUESTED else set()  # a consent link comes by email, whoever needs one
    cold = powertools_logging.is_cold_start
    metrics = wiring.swapped_metrics()
    wiring.use_metrics(NO_METRICS)
    step = "the seed"
    failed: Exception | None = None
    try:
        for _ in range(ROUNDS):  # each round a new world, so every round's requests are first ones
            table = PrimingTable()
            with _answered(table, services, extra), _quiet():
                step = "the seed"
                world = _seed(table, level)
                for method, path in [(m, p) for m, p in primed if f"{m} {p}" not in unexpected]:  # failed: not again
                    step = f"{method} {path}"
                    answers[step] = _request(app, method, path, world)
                    if not 200 <= answers[step] < 300:
                        unexpected.setdefault(step, answers[step])
    except Exception as error:  # best effort: a priming problem must not fail the publish of the version
        failed = error
    finally:
        powertools_logging.is_cold_start = cold  # the first real invocation is still the cold start its lines say
        wiring.use_metrics(metrics)  # back to the metrics in use: the function's use cases are built again with them
        for factory in factories:
            factory()
    _report(unexpected, step, failed)
    return answers


def _request(app: APIGatewayHttpResolver, method: str, path: str, world: World) -> int:
    """The status of the route's valid request in ``world``, through the edge as Lambda calls it."""
    from mci.http.resolver import handle
    from mci.snapstart import prime_event

    request = REQUESTS[f"{method} {path}"](world)
    claims = None if path.startswith("/consent/") else _claims(operations=request.operations)
    body = request.form if request.form is not None else json.dumps(request.body)
    event = prime_event(method, path, parameters=request.parameters, body=body, claims=claims)
    if request.form is not None:
        event["headers"] = {"content-type": "application/x-www-form-urlencoded"}
    # The consent page's edge takes any body, the others JSON.
    return int(handle(app, event, _CONTEXT, json_body=not path.startswith("/consent/"))["statusCode"])


def _report(unexpected: dict[str, int], step: str, failed: Exception | None) -> None:
    """One WARNING per route that answered other than its success, one for an exception (its type, no message)."""
    from mci.observability import error_trace, logger

    for route, status in unexpected.items():
        logger.warning(f"SnapStart priming: {route} answered {status}, not its success", extra={"route": route})
    if failed is not None:
        name = type(failed).__name__
        logger.warning(
            f"SnapStart priming stopped at {step}: {name}",
            extra={"step": step, "exception_name": name, "exception": error_trace(failed)},
        )


@dataclass(frozen=True)
class _Context:
    """The Lambda context of a priming request: what the edge's logging reads of one."""

    function_name: str = "snapstart-prime"
    memory_limit_in_mb: int = 0
    invoked_function_arn: str = "snapstart-prime"
    aws_request_id: str = "snapstart-prime"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


_CONTEXT: Any = _Context()


def _claims(*, operations: bool = False) -> dict[str, str]:
    """The verified token claims of the synthetic partner's user, or of MCI operations."""
    from mci.domain.principal import Role
    from mci.settings import get_settings

    if operations:  # the partner the lifecycle takes for MCI operations (the OperationsPartnerId parameter)
        return {
            "partner_id": get_settings().operations_partner_id,
            "roles": Role.MCI_OPERATIONS.value,
            "sub": "snapstart-prime",
        }
    return {"partner_id": PARTNER, "roles": Role.INCENTIVES_USER.value, "sub": "snapstart-prime"}


def _seed(table: PrimingTable, level: int) -> World:
    """The synthetic reference data, written through the real repository; the claim taken by the real use cases
    as far as ``level`` (its consent link read from the email priming answered)."""
    from mci import wiring
    from mci.domain.reference import ReferenceData

    runtime = wiring.services()
    reference = _reference_data(runtime.clock.now().date())
    runtime.reference.save(ReferenceData.model_validate(reference))
    if level < ADDED:
        return World(reference)
    from mci.domain.claims import Decision
    from mci.domain.commands import AddCustomer, ConsentRequest, Submission
    from mci.domain.nomination import Nominations
    from mci.domain.principal import Principal
    from mci.http.principal import parse_roles

    claims = _claims()
    partner = Principal(partner_id=PARTNER, roles=parse_roles(claims["roles"]), user_id=claims["sub"])
    adding = Nominations(reference=runtime.reference, claims=runtime.claims, clock=runtime.clock)
    (claim, *_) = adding.add_customer(partner, AddCustomer.model_validate(_add_customer_body()))
    world = World(reference, claim_id=claim.claim_id)
    if level >= REQUESTED:
        asked = ConsentRequest(deal_size_usd=Decimal(20000), disclaimer_accepted=True)
        wiring.consent_requesting().request(partner, claim.claim_id, asked)
        world = World(reference, claim_id=claim.claim_id, token=_LINK.findall(table.sent[-1])[0])
    if level >= GRANTED:
        wiring.consent_decisions().decide(world.token, Decision.ACCEPT)
    if level >= SUBMITTED:
        wiring.lifecycle().submit(partner, claim.claim_id, Submission())
    return world


def _reference_data(today: date) -> dict[str, Any]:
    """One engagement open today, one enrolled location of the synthetic partner, one customer and its domain."""
    return {
        "engagements": [
            {
                "engagement_id": ENGAGEMENT,
                "name": "SnapStart priming",
                "payment_type": "fixed",
                "identifier_types": ["domain", "tenant_id", "tpid"],
                "consent_window_days": 30,
                "submission_window_days": 90,
                "max_active_claims_per_customer": 2,
                "criteria": {"segments": ["SMB"], "countries": ["US"]},
                "opens_on": (today - timedelta(days=1)).isoformat(),
                "closes_on": (today + timedelta(days=365)).isoformat(),
                "referral": {"enabled": False, "min_deal_size_usd": 0},
                "payment_rules": None,
            }
        ],
        "locations": [
            {
                "location_id": LOCATION,
                "partner_id": PARTNER,
                "name": "SnapStart priming",
                "enrolled_in_mci": True,
                "eligible_engagements": [ENGAGEMENT],
            }
        ],
        "customers": [
            {
                "identifier_type": "tenant_id",
                "value": TENANT,
                "name": "SnapStart priming",
                "segment": "SMB",
                "country": "US",
                "cosell_allowed": True,
                "opportunity_value_usd": None,
            }
        ],
        "domains": [{"domain": DOMAIN, "tenant_id": TENANT}],
    }


@contextmanager
def _answered(table: PrimingTable, services: set[str], extra: set[str]) -> Iterator[None]:
    """Every client the function created, those of its ``services`` and the ``extra`` ones priming needs, answered
    in this process: DynamoDB and SES v2's sends by ``table``, the rest canned. An extra one is forgotten after."""
    from mci.adapters.aws import CLIENTS, created_clients, forget_client
    from mci.adapters.aws_priming import answered_here

    existing = set(created_clients())
    for service in services | extra:
        CLIENTS[service]()  # created now, answered below: a client created lazily inside would reach AWS
    try:
        with ExitStack() as stack:
            for client in created_clients().values():
                stack.enter_context(answered_here(client, table))
            yield
    finally:
        for service in set(created_clients()) - existing - services:
            forget_client(service)


@contextmanager
def _quiet() -> Iterator[None]:
    """Our logger writes nothing below WARNING while priming runs, its keys cleared afterwards. A filter, not the
    level: changing a level empties every logger's cache of enabled levels, which the first request would refill."""

    def only_problems(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING

    from mci.observability import logger

    logger.addFilter(only_problems)
    try:
        yield
    finally:
        logger.removeFilter(only_problems)
        logger.clear_state()
