"""Every line every function prints (issue 15, item 1): never a contact's name, email or phone, nor a consent
link, its token or its hash; and the lines of one invocation are JSON carrying one correlation id, the cold-start
flag, the Lambda context, and the partner and claim where they are known.

One test per function of ``functions/table.py``: a function added to the table fails here until a case below
drives it. The cases take each function through its happy paths and its failures (DynamoDB throttling every
call, SES refusing or throttling, a bounce and a complaint, a poison stream record, 4xx problems), with contacts
whose name, email and phone are marker strings, and every consent link the emails carried. What is captured is
everything CloudWatch would receive: the Powertools logger's lines (at DEBUG, more than production's INFO writes),
every other logger through the root, and stdout and stderr (the EMF metric lines).
"""

from __future__ import annotations

import importlib
import io
import itertools
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from functions.table import FUNCTIONS
from local.cloudformation import function_environment, load_template
from local.events import load_event
from local.events_feed import PUBLISHER, EventCapture, PollReport, StreamPoller, provision_capture, stream_trigger
from local.lambda_runtime import FakeLambdaContext
from mci import wiring
from mci.adapters import aws
from mci.domain.errors import DependencyUnavailable
from tests.moto.test_publish_events import streams_client
from tests.support import api as api_module
from tests.support.consent import FIRST_REQUEST, LINK, SesThrottle, sent_messages
from tests.support.faults import Outage
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.logs import found_in, personal_data, service_log_lines
from tests.support.numbered_customers import numbered_customers, numbered_domain
from tests.support.reference import CONTOSO, CONTOSO_MADRID, MIGRATE, SECURITY, add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from local.cloudformation import Route
    from mci.domain.clock import FixedClock

# Contacts whose every value is a marker: found anywhere in the output, it leaked.
CUSTOMER = {"name": "Quenby Marrowfield", "email": "Quenby.Marrow+k7@fabrikam.com", "phone": "+34 611 872 943"}
PARTNER = {"name": "Ottoline Vexbridge", "email": "Ottoline.Vex@contoso-partners.com", "phone": "+1 (425) 555-0199"}
NEW_CUSTOMER = {"name": "Quenby Rosewarne", "email": "Q.Rosewarne@fabrikam.com", "phone": "+34 699 204 517"}
INVALID_EMAIL = CUSTOMER["email"].replace("@", " at ")  # refused with 422, and still the contact's
CONTACTS = (CUSTOMER, PARTNER, NEW_CUSTOMER, {"email": INVALID_EMAIL})


def marked_body(customer: int, engagement_id: str = MIGRATE, **overrides: Any) -> dict[str, Any]:
    """Adding ``customer-<n>.example`` with the marker contacts."""
    body = {
        "identifier": {"type": "domain", "value": numbered_domain(customer)},
        "engagement_ids": [engagement_id],
        "customer_contact": {**CUSTOMER, "language": "es"},
        "partner_contact": PARTNER,
    }
    return add_customer_body(**{**body, **overrides})


# ---------------------------------------------------------------- the invocations and what they printed


@dataclass
class Invocation:
    """One invocation of a function, and what it printed: the service logger's lines, stdout's and stderr's."""

    function: str  # its row of functions/table.py
    event: dict[str, Any]
    context: FakeLambdaContext
    logged: list[dict[str, Any]] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)  # stdout and stderr

    @property
    def correlation_id(self) -> str:
        """What its lines carry: the API request id, the stream's first record id, the event's id, else the
        Lambda request id (mci.observability)."""
        records = self.event.get("Records") or [{}]
        found = (
            (self.event.get("requestContext") or {}).get("requestId")
            or records[0].get("eventID")
            or self.event.get("id")
        )
        return str(found or self.context.aws_request_id)

    @property
    def known(self) -> dict[str, str]:
        """The partner and claim the edge knows: the caller's partner, the path's claim, the SES message's tag."""
        request = self.event.get("requestContext") or {}
        claims = ((request.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
        tags = ((self.event.get("detail") or {}).get("mail") or {}).get("tags") or {}
        found = {
            "partner_id": claims.get("partner_id"),
            "claim_id": (self.event.get("pathParameters") or {}).get("claim_id") or (tags.get("claim_id") or [None])[0],
        }
        return {name: value for name, value in found.items() if value}


def runtime_error_line(error: BaseException) -> str:
    """What the Lambda runtime writes to the function's log when a handler raises (awslambdaric, text format):
    the error's type and message, and its stack. Not the service's line, but the same log group."""
    stack = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
    return f"[ERROR] {type(error).__name__}: {error}\nTraceback (most recent call last):\n{stack}"


def folder(function: str) -> str:
    """The handler folder of a function of the table, by its row's name."""
    return next(f.folder for f in FUNCTIONS if f.name == function)


@dataclass
class Recorder:
    """Calls handlers as Lambda would, each invocation with its own context, and keeps what each printed."""

    lines: io.StringIO
    capsys: pytest.CaptureFixture[str]
    invocations: list[Invocation] = field(default_factory=list)
    output: list[str] = field(default_factory=list)  # stdout and stderr of the whole test

    def call(self, function: str, handler: Callable[[dict[str, Any], Any], Any], event: dict[str, Any]) -> Any:
        # 300 s: the sweep's timeout; with less than SWEEP_SEND_MARGIN_SECONDS left it would defer every email.
        context = FakeLambdaContext(f"mci-customers-test-{folder(function).replace('_', '-')}", timeout_seconds=300)
        invocation = Invocation(function, event, context)
        self.invocations.append(invocation)
        self.drain()
        start = len(self.lines.getvalue().splitlines())
        try:
            return handler(event, context)
        except Exception as error:
            self.output.append(runtime_error_line(error))
            raise
        finally:
            invocation.logged = [json.loads(line) for line in self.lines.getvalue().splitlines()[start:]]
            invocation.printed = self.drain().splitlines()

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """An event-driven function of the table, by its row's name."""
        handler = importlib.import_module(f"functions.{folder(function)}.app").lambda_handler
        return self.call(function, handler, event)

    def route_handler(self, route: Route) -> Callable[[dict[str, Any], Any], Any]:
        """``local.handler_calls.route_handler``, recorded: what every ``Caller`` of the test calls."""
        from local.handler_calls import route_handler

        handler = route_handler(route)
        function = route.function.removesuffix("Function")
        return lambda event, _context: self.call(function, handler, event)

    def drain(self) -> str:
        """What was printed since the last drain, stdout then stderr (CloudWatch receives both)."""
        captured = self.capsys.readouterr()
        self.output += [captured.out, captured.err]
        return captured.out + captured.err


@dataclass
class World:
    """The API, the stream publisher and the event functions of one test, every invocation recorded."""

    api: LifecycleApi
    recorder: Recorder
    clock: FixedClock
    dynamodb: DynamoDBClient
    outage: Outage
    poller: StreamPoller
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def publish(self) -> PollReport:
        """Lambda's poller: the stream's new records to the publisher, as the template's trigger batches them."""
        return self.poller.poll_once()

    def body(self, engagement_id: str = MIGRATE, **overrides: Any) -> dict[str, Any]:
        """Adding a customer no claim of the test has yet, with the marker contacts."""
        return marked_body(next(self.numbers), engagement_id, **overrides)

    def add(self, engagement_id: str = MIGRATE) -> str:
        return self.api.add_claim(self.body(engagement_id))

    def requested(self, claim_id: str) -> None:
        answer = self.api.request(claim_id, FIRST_REQUEST)
        assert answer.status == 200, answer.body

    def granted(self, engagement_id: str = MIGRATE) -> str:
        claim_id = self.add(engagement_id)
        self.api.accept(claim_id)
        return claim_id

    def sweep(self) -> dict[str, int]:
        report: dict[str, int] = self.recorder.invoke("ExpireClaims", load_event("expire_claims"))
        return report

    def ses_event(self, name: str, claim_id: str) -> dict[str, Any]:
        """SES's bounce or complaint notification of the claim's consent email, sent to the marker address."""
        message_id = self.api.claim(claim_id)["consent_email"]["message_id"]
        event: dict[str, Any] = json.loads(json.dumps(load_event(name)).replace("ana@fabrikam.com", CUSTOMER["email"]))
        event["detail"]["mail"]["messageId"] = message_id
        event["detail"]["mail"]["tags"]["claim_id"] = [claim_id]
        return event

    @contextmanager
    def throttled(self, *services: str, writes_only: bool = False, after: str | None = None) -> Iterator[None]:
        """Every call to ``services`` (DynamoDB by default) throttled, however often it is retried (``writes_only``,
        ``after``: as ``Outage`` says)."""
        self.outage.services = frozenset(services or ("dynamodb",))
        self.outage.writes_only, self.outage.after = writes_only, after
        with self.outage.during():
            yield

    def unreadable(self, claim_id: str) -> None:
        """The stored claim made one this code refuses: its customer contact without a name (as if written before
        the name was required)."""
        self.dynamodb.update_item(
            TableName="ClaimsTable",
            Key=claim_key(claim_id),
            UpdateExpression="REMOVE customer_contact.#name",
            ExpressionAttributeNames={"#name": "name"},
        )

    def tokens(self) -> list[str]:
        """Every consent token an email has carried."""
        found = [token for message in sent_messages() for token in LINK.findall(str(message.body))]
        return list(dict.fromkeys(found))


# ---------------------------------------------------------------- the cases, by function of the table

UNKNOWN_CLAIM = "7d4c1b2a-0000-4000-8000-00000000dead"
Case = Callable[[World], None]


def statuses(*answers: Any) -> list[int]:
    return [answer.status for answer in answers]


def reads_every_route(world: World) -> None:
    api = world.api
    claim_id = world.granted()  # a known customer, a referral
    referral_id = api.claim(claim_id)["referral_id"]
    admin = api_module.Caller(CONTOSO, ["referral_admin"], None)
    check = {"location_id": CONTOSO_MADRID, "identifier": {"type": "domain", "value": "fabrikam.com"}}
    quote = {"engagement_id": "e-ai-accelerate", "location_id": CONTOSO_MADRID, "hours": 40}
    answers = [
        api.get("/engagements"),
        api.get("/locations"),
        api.get("/known-customers"),
        api.get(f"/engagements/{MIGRATE}/customers"),
        api.get(f"/engagements/{MIGRATE}/customers", query={"tab": "complete"}),
        api.get("/attention-items"),
        api.get(f"/claims/{claim_id}"),
        api.get(f"/referrals/{referral_id}", as_=admin),
        api.post("/eligibility-checks", {**check, "customer_email": CUSTOMER["email"]}),
        api.post("/payment-quotes", {**quote, "msx_opportunity_id": "7-ABC123XYZ"}),
    ]
    assert statuses(*answers) == [200] * len(answers), [a.body for a in answers]


def reads_refused_and_throttled(world: World) -> None:
    api = world.api
    claim_id = world.add()
    check = {"location_id": CONTOSO_MADRID, "identifier": {"type": "domain", "value": "fabrikam.com"}}
    refused = [
        api.post("/eligibility-checks", {**check, "customer_email": CUSTOMER["email"], "name": CUSTOMER["name"]}),
        api.get(f"/engagements/{MIGRATE}/customers", query={"cursor": CUSTOMER["email"]}),
        api.get(f"/claims/{UNKNOWN_CLAIM}"),
    ]
    assert statuses(*refused) == [422, 422, 404], [a.body for a in refused]
    with world.throttled():
        busy = [api.get(f"/claims/{claim_id}"), api.get("/known-customers"), api.post("/eligibility-checks", check)]
    assert statuses(*busy) == [503] * 3


def reads_a_claim_the_code_cannot_read(world: World) -> None:
    """A stored claim this code refuses (written before a rule changed its shape): an unexpected error, whose
    traceback must not quote the data it refused."""
    claim_id = world.add()
    world.unreadable(claim_id)
    assert world.api.get(f"/claims/{claim_id}").status == 500


def add_customer(world: World) -> None:
    api = world.api
    body = world.body()
    answers = [
        api.post("/customers", body, key="add-1"),
        api.post("/customers", body, key="add-1"),
        api.post("/customers", body),
        api.post("/customers", world.body(customer_contact={**CUSTOMER, "email": INVALID_EMAIL})),
    ]
    assert statuses(*answers) == [201, 201, 409, 422], [a.body for a in answers]
    with world.throttled():
        assert api.post("/customers", world.body()).status == 503
    with world.throttled(writes_only=True):
        assert api.post("/customers", world.body(), key="add-2").status == 503


def claim_customer(world: World) -> None:
    api = world.api
    world.granted()
    [customer] = api.known_customers().body["items"]
    known = customer["customer_id"]
    body = {
        "friendly_name": "Fabrikam security",
        "location_id": CONTOSO_MADRID,
        "engagement_ids": [SECURITY],
        "customer_contact": {**NEW_CUSTOMER, "language": "en"},
        "partner_contact": PARTNER,
    }
    answers = [
        api.claim_customer(known, body, key="claim-1"),
        api.claim_customer(known, body, key="claim-1"),
        api.claim_customer(known, body),
        api.claim_customer("tenant_id:" + UNKNOWN_CLAIM, body),
        api.claim_customer(known, {**body, "customer_contact": {**NEW_CUSTOMER, "email": INVALID_EMAIL}}),
    ]
    assert statuses(*answers) == [201, 201, 409, 404, 422], [a.body for a in answers]
    with world.throttled():
        assert api.claim_customer(known, {**body, "engagement_ids": [MIGRATE]}).status == 503


def load_reference_data(world: World) -> None:
    api = world.api
    data = numbered_customers(range(1, 3))
    answers = [
        api.post("/ops/reference-data", data, as_=api.ops),
        api.post("/ops/reference-data", {"customers": [{"name": CUSTOMER["name"]}]}, as_=api.ops),
        api.post("/ops/reference-data", data, as_=api.partner),
    ]
    assert statuses(*answers) == [200, 422, 403], [a.body for a in answers]
    with world.throttled():
        assert api.post("/ops/reference-data", data, as_=api.ops).status == 503


def request_consent(world: World) -> None:
    api = world.api
    claim_id = world.add()
    first = api.request(claim_id, FIRST_REQUEST, key="request-1")
    replay = api.request(claim_id, FIRST_REQUEST, key="request-1")
    world.clock.advance(timedelta(hours=2))
    resend = api.request(claim_id, {"customer_contact": {**NEW_CUSTOMER, "language": "es"}, "partner_contact": PARTNER})
    too_soon = api.request(claim_id, {})
    assert statuses(first, replay, resend, too_soon) == [200, 200, 200, 409], too_soon.body
    refused = world.add(SECURITY)
    SesThrottle(aws.sesv2(), code="MessageRejected", status=400)
    rejected = api.request(refused, FIRST_REQUEST)
    assert (rejected.status, rejected.body["errors"][0]["field"]) == (422, "customer_contact.email"), rejected.body
    throttled = world.add()
    with world.throttled("sesv2"):
        assert api.request(throttled, FIRST_REQUEST).status in (200, 503)
    with world.throttled():
        assert api.request(claim_id, {}).status == 503
    unwritten, unrecorded = world.add(), world.add()
    with world.throttled(writes_only=True):  # the request's own write
        assert api.request(unwritten, FIRST_REQUEST).status == 503
    with world.throttled(writes_only=True, after="SendEmail"):  # SES took the email; recording it is throttled
        assert api.request(unrecorded, FIRST_REQUEST).status == 200  # the email went out: the partner is told so


def consent_page(world: World) -> None:
    api = world.api
    accepted, declined = world.add(), world.add(SECURITY)
    world.requested(accepted)
    world.requested(declined)
    token, other = world.tokens()
    with world.throttled():
        busy = [api.page(token), api.decide(token, "accept")]
    with world.throttled(writes_only=True):
        busy.append(api.decide(token, "accept"))
    answers = [
        api.page(token),
        api.page(token, "HEAD"),
        api.page(token, "POST", "decision=maybe"),
        api.decide(token, "accept"),
        refused_notice(world, lambda: api.decide(other, "decline")),
        api.page(token),
        api.page("Q" * 43),
    ]
    assert statuses(*busy) == [503, 503, 503]
    assert statuses(*answers) == [200, 200, 400, 200, 200, 404, 404]
    noticed = world.add()
    world.requested(noticed)
    with world.throttled(writes_only=True, after="SendEmail"):  # the partner's notice sent, its clearance throttled
        assert api.decide(world.tokens()[-1], "accept").status == 200  # the sweep sends the notice again


def refused_notice(world: World, decide: Callable[[], Any]) -> Any:
    """The decision, with SES refusing the partner's notice of it for good (recorded on the claim, rule 29)."""
    refusal = SesThrottle(aws.sesv2(), code="MessageRejected", status=400)
    answer = decide()
    assert len(refusal.refused) == 1
    return answer


def submit_claim(world: World) -> None:
    api = world.api
    claim_id = world.granted()
    pending = world.add(SECURITY)
    with world.throttled():
        assert api.submit(claim_id).status == 503
    with world.throttled(writes_only=True):
        assert api.submit(claim_id).status == 503
    answers = [
        api.submit(claim_id, {"notes": "ready"}, key="submit-1"),
        api.submit(claim_id, {"notes": "ready"}, key="submit-1"),
        api.submit(claim_id),
        api.submit(pending),
        api.submit(UNKNOWN_CLAIM),
    ]
    assert statuses(*answers) == [200, 200, 409, 409, 404], [a.body for a in answers]


def cancel_claim(world: World) -> None:
    api = world.api
    claim_id = world.add()
    world.requested(claim_id)
    with world.throttled():
        assert api.cancel(claim_id).status == 503
    with world.throttled(writes_only=True):
        assert api.cancel(claim_id).status == 503
    answers = [api.cancel(claim_id, key="cancel-1"), api.cancel(claim_id, key="cancel-1"), api.cancel(claim_id)]
    answers.append(api.cancel(claim_id, body={"reason": 7}))
    assert statuses(*answers) == [200, 200, 409, 422], [a.body for a in answers]


def review_claim(world: World) -> None:
    api = world.api
    completed = api.submitted(world.body())
    rejected = api.submitted(world.body(SECURITY))
    with world.throttled():
        assert api.review(completed).status == 503
    answers = [
        api.review(completed, "complete"),
        api.review(rejected, "reject", "not eligible after all"),
        api.review(completed, "reject"),
        api.review(completed, body={"decision": "complete"}),
        api.review(completed, caller=api.partner),
    ]
    assert statuses(*answers) == [200, 200, 409, 422, 403], [a.body for a in answers]


def expire_claims(world: World) -> None:
    """Reminders sent, refused by SES for good (a poison item) and throttled; a consent email SES never took,
    redelivered with a new link; claims expired at their deadline; a run while DynamoDB throttles."""
    api = world.api
    for claim_id in (world.add(), world.add(SECURITY)):
        world.requested(claim_id)
    with world.throttled("sesv2"):  # the emails stay pending: the sweep redelivers them
        stuck = [api.request(world.add(), FIRST_REQUEST) for _ in range(2)]
    assert statuses(*stuck) == [503, 503], [a.body for a in stuck]
    world.clock.advance(timedelta(days=23))  # the 7-day reminders are due
    SesThrottle(aws.sesv2_one_attempt(), code="MessageRejected", status=400)  # one email of the run refused for good
    first = world.sweep()
    assert (first["examined"], first["poisoned"]) == (4, 1), first
    assert first["redelivered"] + first["reminded"] == 5, first
    world.clock.advance(timedelta(days=6))  # the 1-day reminders
    with world.throttled(writes_only=True, after="SendEmail"):  # the first reminder sent, then writes throttled
        assert world.sweep()["failed"] >= 1
    with world.throttled("sesv2"):  # SES throttles: the run sends nothing more, the emails stay queued
        assert world.sweep()["deferred"] >= 1
    world.clock.advance(timedelta(days=2))  # past the consent deadline
    assert world.sweep()["expired"] == 4


def publish_events(world: World) -> None:
    """Every change of the flows published; a record the publisher cannot read (poison); EventBridge throttled."""
    api = world.api
    api.submitted(world.body())
    cancelled = world.add(SECURITY)
    world.requested(cancelled)
    assert api.cancel(cancelled).status == 200
    poison = dict(world.dynamodb.get_item(TableName="ClaimsTable", Key=claim_key(cancelled))["Item"])
    poison.update(PK={"S": "CLAIM#broken"}, state={"S": "lost"})
    world.dynamodb.put_item(TableName="ClaimsTable", Item=poison)
    with world.throttled("events"):
        assert world.publish().failures == 1
    assert world.publish().failures == 0


def ses_feedback(world: World) -> None:
    bounced, complained = world.add(), world.add(SECURITY)
    world.requested(bounced)
    world.requested(complained)
    bounce, complaint = world.ses_event("ses_bounce", bounced), world.ses_event("ses_complaint", complained)
    delivery = {**bounce, "detail": {**bounce["detail"], "eventType": "Delivery"}}
    feedback = [world.recorder.invoke("SesFeedback", event) for event in (bounce, complaint, bounce, delivery)]
    assert feedback == [{"updated": True}, {"updated": True}, {"updated": False}, {"updated": False}]
    # Lambda retries what raises (EventInvokeConfig): nothing of the service's logged, the runtime logs the error
    with world.throttled(), pytest.raises(DependencyUnavailable):
        world.recorder.invoke("SesFeedback", complaint)
    world.unreadable(complained)  # a claim the code cannot read: what the runtime prints of the error quotes nothing
    with pytest.raises(ValueError, match="stored claim this code cannot read"):
        world.recorder.invoke("SesFeedback", complaint)


def claim_key(claim_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CLAIM#{claim_id}"}, "SK": {"S": "CLAIM"}}


# The lines each function must have written in its cases (all of its kinds): otherwise a case lost its failure.
LINES = {
    "Reads": {"dependency unavailable", "unexpected error"},
    "ExpireClaims": {"sweep finished", "poison item"},
    "PublishEvents": {"stream batch", "poison record"},
    "SesFeedback": {"SES feedback", "ignored SES event"},
}
API_LINES = {"dependency unavailable"}

# Each function of functions/table.py, by its row's name: the cases that drive it (and what they need of others).
CASES: dict[str, tuple[Case, ...]] = {
    "Reads": (reads_every_route, reads_refused_and_throttled, reads_a_claim_the_code_cannot_read),
    "AddCustomer": (add_customer,),
    "ClaimCustomer": (claim_customer,),
    "LoadReferenceData": (load_reference_data,),
    "RequestConsent": (request_consent,),
    "ConsentPage": (consent_page,),
    "SubmitClaim": (submit_claim,),
    "CancelClaim": (cancel_claim,),
    "ReviewClaim": (review_claim,),
    "ExpireClaims": (expire_claims,),
    "PublishEvents": (publish_events,),
    "SesFeedback": (ses_feedback,),
}


# ---------------------------------------------------------------- the test


@pytest.fixture
def world(
    seeded: DynamoDBClient,
    clock: FixedClock,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    template = load_template()
    bus_name = function_environment(template, PUBLISHER)["EVENT_BUS_NAME"]
    monkeypatch.setenv("EVENT_BUS_NAME", bus_name)
    monkeypatch.setenv("CLAIM_WRITE_ATTEMPTS", "3")  # a throttled write gives up sooner; it logs the same lines
    wiring.reset()  # settings and clients read again, with the publisher's environment
    sqs = boto3.client("sqs", region_name="us-east-1")
    EventCapture(sqs, provision_capture(boto3.client("events", region_name="us-east-1"), sqs, bus_name))
    stream_arn = seeded.describe_table(TableName="ClaimsTable")["Table"]["LatestStreamArn"]
    caplog.set_level(logging.INFO)  # every other logger, at the production level
    outage = Outage(frozenset({"dynamodb"}))
    outage.install(monkeypatch)
    with service_log_lines("DEBUG") as lines:  # the service's own lines, DEBUG included (production: INFO)
        recorder = Recorder(lines, capsys)
        monkeypatch.setattr(api_module, "route_handler", recorder.route_handler)
        api = lifecycle_api(lambda_context)
        api.load_reference(numbered_customers(range(1, 21)))
        poller = StreamPoller(
            streams_client(),
            stream_arn,
            lambda event: recorder.invoke("PublishEvents", event),
            stream_trigger(template),
        )
        yield World(api, recorder, clock, seeded, outage, poller)


def assert_structured(invocation: Invocation) -> None:
    """Each line JSON; each log line with the invocation's correlation id (a poison record's line: the id of the
    record it passes over), the cold-start flag, the Lambda context, and the partner and claim the edge knows."""
    where = f"{invocation.function} {invocation.context.aws_request_id}"
    for text in invocation.printed:
        assert isinstance(json.loads(text), dict), f"{where}: not a JSON object: {text}"
    records = {str(r.get("eventID")) for r in invocation.event.get("Records") or []}
    for line in invocation.logged:
        passed_over = line["message"] == "poison record" and line.get("correlation_id") in records
        assert passed_over or line.get("correlation_id") == invocation.correlation_id, f"{where}: {line}"
        assert isinstance(line.get("cold_start"), bool), f"{where}: {line}"
        assert line.get("function_name") == invocation.context.function_name, f"{where}: {line}"
        assert line.get("function_request_id") == invocation.context.aws_request_id, f"{where}: {line}"
        for key, value in invocation.known.items():
            assert line.get(key) == value, f"{where}: {key} should be {value}: {line}"


def test_every_case_drives_a_function_of_the_table() -> None:
    assert set(CASES) <= {function.name for function in FUNCTIONS}


@pytest.mark.parametrize("function", [function.name for function in FUNCTIONS])
def test_every_line_a_function_prints_is_structured_and_holds_no_personal_data(
    function: str, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    cases = CASES.get(function)
    assert cases, f"no case of CASES drives {function} (functions/table.py): add its flows, happy and failing"
    for case in cases:
        case(world)
    driven = [i for i in world.recorder.invocations if i.function == function]
    written = {line["message"] for invocation in driven for line in invocation.logged}
    assert LINES.get(function, API_LINES) <= written, f"{function} did not write every line its cases should"
    for invocation in world.recorder.invocations:
        assert_structured(invocation)
    world.recorder.drain()
    printed = world.recorder.lines.getvalue() + caplog.text + "".join(world.recorder.output)
    base_url = wiring.services().settings.public_base_url
    secrets = personal_data(contacts=CONTACTS, tokens=world.tokens(), public_base_url=base_url)
    assert found_in(printed, secrets) == []
