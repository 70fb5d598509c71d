"""One scenario per operation: how to prepare one call (untimed, uncounted) and what it must answer.

Every scenario can run many times in a row: its ``prepare`` builds fresh state for each call (a new
customer to add, a new claim to send consent for...), so each measured call does the same work. The
minimum round trips of the operations the issue names are argued in docs/performance.md; ``minimum``
holds them per unit (per call, or per due claim for the sweep).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bench.common import REGION
from bench.world import OPERATIONS_PARTNER, SECURITY, THIRD, World
from local.answers import Answer

MIGRATE = "e-azure-migrate"
CONTOSO = "p-contoso-partners"
CONTOSO_MADRID = "1234567"
NORTHWIND = "p-northwind-consulting"
NORTHWIND_DUBLIN = "7654321"
FIRST_REQUEST = {"deal_size_usd": 25000, "disclaimer_accepted": True}


@dataclass
class Call:
    """One prepared invocation: the event, and how to know it did the work."""

    function: str
    event: dict[str, Any]
    check: Callable[[Answer], str | None]
    units: int = 1


@dataclass
class Scenario:
    key: str
    title: str
    function: str
    prepare: Callable[[Flows], Call]
    required: bool = False
    minimum: dict[str, float] | None = None
    unit: str = "call"
    note: str = ""
    warm: bool = False  # the one scenario of its function timed many times for warm overhead


def status(expected: int) -> Callable[[Answer], str | None]:
    def check(answer: Answer) -> str | None:
        return None if answer.status == expected else f"answered {answer.status}: {answer.body}"

    return check


@dataclass
class Flows:
    """The real flows, through the real handlers, for setting up a scenario's state."""

    world: World
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> Any:
        return self.world.now

    def claims(self, partner_id: str = CONTOSO, roles: tuple[str, ...] = ("incentives_user",)) -> dict[str, str]:
        from local.events import jwt_claims

        return jwt_claims(partner_id, list(roles))

    def add_body(self, n: int, engagements: list[str], partner_id: str = CONTOSO) -> dict[str, Any]:
        from tests.support.numbered_customers import numbered_body

        body = numbered_body(n, engagements[0], engagement_ids=engagements)
        if partner_id == NORTHWIND:
            body.update(
                location_id=NORTHWIND_DUBLIN,
                partner_contact={"name": "Kim Ode", "email": "kim@northwind.example"},
            )
        return body

    def add(self, n: int, engagements: list[str], partner_id: str = CONTOSO) -> list[str]:
        event = self.world.event(
            "POST", "/customers", claims=self.claims(partner_id), body=self.add_body(n, engagements, partner_id)
        )
        answer = self.world.call(event, expect=201)
        return [c["claim_id"] for c in answer.body["claims"]]

    def request_event(self, claim_id: str, partner_id: str = CONTOSO) -> dict[str, Any]:
        return self.world.event(
            "POST",
            f"/claims/{claim_id}/consent-requests",
            claims=self.claims(partner_id),
            body=FIRST_REQUEST,
        )

    def request_consent(self, claim_id: str, partner_id: str = CONTOSO) -> tuple[str, dict[str, Any]]:
        """The first consent request; the token of the link in the email, and the claim after it."""
        from tests.support.consent import sent_messages, token_in

        answer = self.world.call(self.request_event(claim_id, partner_id))
        return token_in(str(sent_messages()[-1].body)), answer.body

    def page_event(self, token: str, method: str = "GET", form: str | None = None) -> dict[str, Any]:
        headers = {"content-type": "application/x-www-form-urlencoded"} if method == "POST" else {}
        return self.world.event(
            method,
            f"/consent/{token}",
            claims=None,
            raw_body=form,
            headers=headers,
        )

    def granted(self, n: int, engagement: str, partner_id: str = CONTOSO) -> str:
        (claim_id,) = self.add(n, [engagement], partner_id)
        token, _ = self.request_consent(claim_id, partner_id)
        self.world.call(self.page_event(token, "POST", "decision=accept"))
        return claim_id

    def claim_event(
        self, claim_id: str, action: str, body: dict[str, Any], *, ops: bool = False, partner_id: str = CONTOSO
    ) -> dict[str, Any]:
        prefix = "/ops/claims" if ops else "/claims"
        return self.world.event(
            "POST",
            f"{prefix}/{claim_id}/{action}",
            claims=self.claims(OPERATIONS_PARTNER, ("mci_operations",)) if ops else self.claims(partner_id),
            body=body,
        )

    def once(self, name: str, build: Callable[[], Any]) -> Any:
        if name not in self.cache:
            self.cache[name] = build()
        return self.cache[name]

    def backdated(self, days: int, count: int) -> None:
        """``count`` new claims made ``days`` ago (the service clock is set back, then to now again)."""
        self.world.clock.set(self.now - timedelta(days=days))
        try:
            for _ in range(count):
                self.add(self.world.next_customer(), [MIGRATE])
        finally:
            self.world.clock.set(self.now)


# ---------------------------------------------------------------- the scenarios


def _add(engagements: list[str], key: bool = False) -> Callable[[Flows], Call]:
    def prepare(flows: Flows) -> Call:
        n = flows.world.next_customer()
        headers = {"idempotency-key": f"bench-{n}"} if key else None
        event = flows.world.event(
            "POST", "/customers", claims=flows.claims(), body=flows.add_body(n, engagements), headers=headers
        )
        return Call("add_customer", event, status(201))

    return prepare


def _claim_customer(flows: Flows) -> Call:
    from tests.support.numbered_customers import numbered_key

    n = flows.world.next_customer()
    flows.granted(n, SECURITY)  # a known customer of the partner, claimed now for another engagement
    customer_id = numbered_key(n)
    event = flows.world.event(
        "POST",
        f"/known-customers/{customer_id}/claims",
        claims=flows.claims(),
        body={"friendly_name": f"Customer {n} again", "location_id": CONTOSO_MADRID, "engagement_ids": [MIGRATE]},
    )
    return Call("claim_customer", event, status(201))


def _consent_send(flows: Flows) -> Call:
    (claim_id,) = flows.add(flows.world.next_customer(), [MIGRATE])
    return Call("request_consent", flows.request_event(claim_id), status(200))


def _consent_get(flows: Flows) -> Call:
    def open_link() -> str:
        (claim_id,) = flows.add(flows.world.next_customer(), [MIGRATE])
        return flows.request_consent(claim_id)[0]

    token = flows.once("open token", open_link)
    return Call("consent_page", flows.page_event(token), status(200))


def _consent_post(flows: Flows) -> Call:
    (claim_id,) = flows.add(flows.world.next_customer(), [MIGRATE])
    token, _ = flows.request_consent(claim_id)
    return Call("consent_page", flows.page_event(token, "POST", "decision=accept"), status(200))


def _northwind_page(flows: Flows) -> None:
    """Northwind in Azure Migrate: 2 active claims, 1 cancelled, 3 known customers (one ENT: ineligible)."""
    from bench.world import ENTERPRISE_CUSTOMERS

    for n in (flows.world.next_customer(), flows.world.next_customer(), ENTERPRISE_CUSTOMERS[0]):
        flows.granted(n, SECURITY, NORTHWIND)
    flows.add(flows.world.next_customer(), [MIGRATE], NORTHWIND)
    flows.add(flows.world.next_customer(), [MIGRATE], NORTHWIND)
    (cancelled,) = flows.add(flows.world.next_customer(), [MIGRATE], NORTHWIND)
    event = flows.claim_event(cancelled, "cancellation", {"reason": "customer changed plans"}, partner_id=NORTHWIND)
    flows.world.call(event)


def _customers(tab: str) -> Callable[[Flows], Call]:
    def prepare(flows: Flows) -> Call:
        flows.once("northwind page", lambda: _northwind_page(flows))
        event = flows.world.event(
            "GET",
            f"/engagements/{MIGRATE}/customers",
            claims=flows.claims(NORTHWIND),
            query={"tab": tab},
        )
        return Call("reads", event, status(200))

    return prepare


def _one_claim(flows: Flows) -> str:
    def build() -> str:
        (claim_id,) = flows.add(flows.world.next_customer(), [MIGRATE])
        return claim_id

    claim_id: str = flows.once("one claim", build)
    return claim_id


def _get_claim(flows: Flows) -> Call:
    claim_id = _one_claim(flows)
    event = flows.world.event(
        "GET",
        f"/claims/{claim_id}",
        claims=flows.claims(),
    )
    return Call("reads", event, status(200))


def _sweep(days: int, outcome: str, due: int) -> Callable[[Flows], Call]:
    def prepare(flows: Flows) -> Call:
        flows.backdated(days, due)

        def check(answer: Answer) -> str | None:
            report = answer.body
            if report.get("examined") != due or report.get(outcome) != due:
                return f"expected {due} examined and {outcome}, got {report}"
            return None

        return Call("expire_claims", {}, check, units=due)

    return prepare


def _sent_claim(flows: Flows) -> dict[str, Any]:
    def build() -> dict[str, Any]:
        (claim_id,) = flows.add(flows.world.next_customer(), [MIGRATE])
        return flows.request_consent(claim_id)[1]

    claim: dict[str, Any] = flows.once("sent claim", build)
    return claim


def _get_referral(flows: Flows) -> Call:
    referral_id = _sent_claim(flows)["referral_id"]
    event = flows.world.event(
        "GET",
        f"/referrals/{referral_id}",
        claims=flows.claims(CONTOSO, ("referral_admin",)),
    )
    return Call("reads", event, status(200))


def _body_of(sample: str) -> Any:
    from local.events import load_event

    event = load_event(sample)
    return json.loads(event["body"])


def _post(function: str, path: str, sample: str, ops: bool = False) -> Callable[[Flows], Call]:
    def prepare(flows: Flows) -> Call:
        from tests.support.reference import demo_json

        body = demo_json() if sample == "demo" else _body_of(sample)
        claims = flows.claims(OPERATIONS_PARTNER, ("mci_operations",)) if ops else flows.claims()
        return Call(function, flows.world.event("POST", path, claims=claims, body=body), status(200))

    return prepare


def _get(function: str, path: str) -> Callable[[Flows], Call]:
    def prepare(flows: Flows) -> Call:
        return Call(function, flows.world.event("GET", path, claims=flows.claims()), status(200))

    return prepare


def _submit(flows: Flows) -> Call:
    claim_id = flows.granted(flows.world.next_customer(), MIGRATE)
    return Call("submit_claim", flows.claim_event(claim_id, "submission", {}), status(200))


def _cancel(flows: Flows) -> Call:
    (claim_id,) = flows.add(flows.world.next_customer(), [MIGRATE])
    return Call("cancel_claim", flows.claim_event(claim_id, "cancellation", {"reason": "bench"}), status(200))


def _review(flows: Flows) -> Call:
    claim_id = flows.granted(flows.world.next_customer(), MIGRATE)
    flows.world.call(flows.claim_event(claim_id, "submission", {}))
    body = {"decision": "complete", "reason": "checked by operations"}
    return Call("review_claim", flows.claim_event(claim_id, "review", body, ops=True), status(200))


def _publish(flows: Flows) -> Call:
    def build() -> dict[str, Any]:
        import os

        import boto3

        claim_id = _one_claim(flows)
        client = boto3.session.Session().client("dynamodb", region_name=REGION)
        image = client.get_item(
            TableName=os.environ["TABLE_NAME"], Key={"PK": {"S": f"CLAIM#{claim_id}"}, "SK": {"S": "CLAIM"}}
        )["Item"]
        record = {
            "eventID": "1",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": {"PK": image["PK"], "SK": image["SK"]},
                "NewImage": image,
                "SequenceNumber": "100000000000000000001",
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
        }
        return {"Records": [record]}

    event = flows.once("stream event", build)

    def check(answer: Answer) -> str | None:
        return None if answer.body == {"batchItemFailures": []} else f"answered {answer.body}"

    return Call("publish_events", event, check)


def _ses_feedback(flows: Flows) -> Call:
    from local.events import load_event

    claim = _sent_claim(flows)
    flows.cache["feedback"] = flows.cache.get("feedback", 0) + 1
    kind = "Bounce" if flows.cache["feedback"] % 2 else "Complaint"
    event = load_event("ses_bounce")
    event["detail"]["eventType"] = kind
    event["detail"]["mail"]["messageId"] = claim["consent_email"]["message_id"]
    event["detail"]["mail"]["tags"]["claim_id"] = [claim["claim_id"]]

    def check(answer: Answer) -> str | None:
        return None if answer.body == {"updated": True} else f"answered {answer.body}"

    return Call("ses_feedback", event, check)


SWEEP_DUE = 5  # due claims per sweep run: 8 shard queries per run are spread over them


# One scenario per function, timed many times for warm overhead; the others are counted once.
WARM_SET = frozenset(
    {
        "add_customer_1",
        "claim_customer",
        "consent_send",
        "consent_page_get",
        "customers_eligible",
        "claim_details",
        "sweep_expire",
        "list_engagements",
        "list_locations",
        "check_eligibility",
        "quote_payment",
        "list_known_customers",
        "get_referral",
        "submit_claim",
        "cancel_claim",
        "review_claim",
        "load_reference_data",
        "publish_events",
        "ses_feedback",
    }
)


def scenarios(due: int = SWEEP_DUE) -> list[Scenario]:
    found = _scenarios(due)
    for scenario in found:
        scenario.warm = scenario.key in WARM_SET
    return found


def _scenarios(due: int) -> list[Scenario]:
    shard_queries = 8
    return [
        Scenario(
            "add_customer_1", "add customer, 1 engagement", "add_customer", _add([MIGRATE]), True, {"dynamodb": 3}
        ),
        Scenario(
            "add_customer_3",
            "add customer, 3 engagements",
            "add_customer",
            _add([MIGRATE, SECURITY, THIRD]),
            True,
            {"dynamodb": 3},
        ),
        Scenario(
            "add_customer_1_key",
            "add customer, 1 engagement, Idempotency-Key",
            "add_customer",
            _add([MIGRATE], key=True),
            False,
            {"dynamodb": 5},
        ),
        Scenario("claim_customer", "claim customer", "claim_customer", _claim_customer, True, {"dynamodb": 2}),
        Scenario(
            "consent_send",
            "consent send (first request)",
            "request_consent",
            _consent_send,
            True,
            {"dynamodb": 4, "sesv2": 1},
        ),
        Scenario("consent_page_get", "consent page GET", "consent_page", _consent_get, True, {"dynamodb": 1}),
        Scenario(
            "consent_page_post",
            "consent page POST (accept)",
            "consent_page",
            _consent_post,
            True,
            {"dynamodb": 5, "sesv2": 1},
        ),
        Scenario(
            "customers_eligible",
            "Customers tab: eligible",
            "customers_page",
            _customers("eligible"),
            True,
            {"dynamodb": 5},
            note="2 active claims, 3 known customers",
        ),
        Scenario(
            "customers_ineligible",
            "Customers tab: ineligible",
            "customers_page",
            _customers("ineligible"),
            True,
            {"dynamodb": 4},
            note="3 known customers",
        ),
        Scenario(
            "customers_complete",
            "Customers tab: complete",
            "customers_page",
            _customers("complete"),
            True,
            {"dynamodb": 3},
            note="1 cancelled claim",
        ),
        Scenario("claim_details", "claim details", "get_claim", _get_claim, True, {"dynamodb": 1}),
        Scenario(
            "sweep_expire",
            "sweep, per due claim (expire)",
            "expire_claims",
            _sweep(31, "expired", due),
            True,
            {"dynamodb": (shard_queries + due) / due},
            unit="due claim",
            note=f"{due} due claims per run; 8 shard queries per run",
        ),
        Scenario(
            "sweep_remind",
            "sweep, per due claim (reminder)",
            "expire_claims",
            _sweep(24, "reminded", due),
            True,
            # Exactly once (issue 12, item 13): marked with the reminder in the outbox, sent, taken out of it.
            {"dynamodb": (shard_queries + 1 + 2 * due) / due, "sesv2": 1},
            unit="due claim",
            note=f"{due} due claims per run; 8 shard queries per run",
        ),
        Scenario("list_engagements", "list engagements", "list_engagements", _get("reads", "/engagements")),
        Scenario("list_locations", "list locations", "list_locations", _get("reads", "/locations")),
        Scenario(
            "check_eligibility",
            "check eligibility",
            "check_eligibility",
            _post("reads", "/eligibility-checks", "check_eligibility"),
            minimum={"dynamodb": 3},
        ),
        Scenario(
            "quote_payment",
            "quote payment",
            "quote_payment",
            _post("reads", "/payment-quotes", "quote_payment"),
            minimum={"dynamodb": 1},
        ),
        Scenario(
            "list_known_customers",
            "list known customers",
            "list_known_customers",
            _get("reads", "/known-customers"),
        ),
        Scenario("get_referral", "get referral", "get_referral", _get_referral),
        Scenario("submit_claim", "submit claim", "submit_claim", _submit),
        Scenario("cancel_claim", "cancel claim", "cancel_claim", _cancel),
        Scenario("review_claim", "review claim", "review_claim", _review),
        Scenario(
            "load_reference_data",
            "load reference data (demo data)",
            "load_reference_data",
            _post("load_reference_data", "/ops/reference-data", "demo", ops=True),
        ),
        Scenario("publish_events", "publish events (1 record)", "publish_events", _publish),
        Scenario("ses_feedback", "SES feedback (bounce)", "ses_feedback", _ses_feedback),
    ]


def customers_needed(iterations: int, due: int = SWEEP_DUE) -> int:
    """Numbered customers the scenarios use: at most one per call of a scenario, ``due`` per sweep run."""
    return iterations * (8 + due) + 40 + 2 * due
