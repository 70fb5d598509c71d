"""GET, HEAD and POST /consent/{token} through the real handler on moto (rules 15-16)."""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.events import http_event
from local.handler_calls import NoSuchRoute, route_handler, template_route
from mci import wiring
from tests.support.api import Caller
from tests.support.consent import (
    ConsentApi,
    consent_api,
    every_item,
    northwind_body,
    recipients,
    sent_messages,
    stored_claim,
    stored_item,
)
from tests.support.logs import service_log_lines
from tests.support.reference import CONTOSO, FABRIKAM_TENANT, NORTHWIND, SECURITY, add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

URL = re.compile(r"(?i)https?://")
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> ConsentApi:
    return consent_api(lambda_context)


def snapshot(dynamodb: DynamoDBClient, claim_id: str) -> list[Any]:
    """The claim item and its counter, guard and token items, exactly as stored."""
    claim = stored_claim(dynamodb, claim_id)
    digest = claim.get("consent_token_hash", {}).get("S")
    limit = f"LIMIT#{claim['engagement_id']['S']}#{claim['customer_key']['S']}"
    return [
        claim,
        stored_item(dynamodb, f"TOKEN#{digest}", "TOKEN") if digest else None,
        *(stored_item(dynamodb, item["PK"]["S"], item["SK"]["S"]) for item in _limit_items(dynamodb, limit)),
    ]


def _limit_items(dynamodb: DynamoDBClient, pk: str) -> list[dict[str, Any]]:
    found = dynamodb.query(
        TableName="ClaimsTable", KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    )
    return found["Items"]


def assert_page_headers(answer: Any) -> None:
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    csp = [d.strip() for d in answer.headers["content-security-policy"].split(";")]
    assert csp[0] == "default-src 'none'"
    assert not URL.search(answer.headers["content-security-policy"])


# ---------------------------------------------------------------- reading the page


def test_get_and_head_show_the_page_and_change_nothing(api: ConsentApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    before = snapshot(dynamodb, claim_id)
    assert _limit_items(dynamodb, f"LIMIT#e-azure-migrate#tenant_id:{FABRIKAM_TENANT}")  # the snapshot sees them
    claim_before = api.claim(claim_id)
    for _ in range(3):
        page = api.page(token)
        assert page.status == 200
        assert_page_headers(page)
        assert "Doy mi consentimiento" in page.body
        assert "27 de diciembre de 2026" in page.body
        assert not URL.search(page.body)
        head = api.page(token, "HEAD")
        assert head.status == 200
        assert_page_headers(head)
        assert head.body == ""
    assert snapshot(dynamodb, claim_id) == before
    assert api.claim(claim_id) == claim_before
    assert len(sent_messages()) == 1


def test_the_page_speaks_the_contacts_language(api: ConsentApi) -> None:
    body = add_customer_body(customer_contact={"name": "Ann Lee", "email": "ann@fabrikam.com", "language": "en"})
    token = api.requested(api.add_claim(body))
    page = api.page(token)
    assert '<html lang="en">' in page.body
    assert "I give my consent" in page.body
    assert "27 December 2026" in page.body
    message = sent_messages()[-1]
    assert message.subject == "Contoso Partners Madrid asks for your consent: Azure Migrate assessment"


def test_names_are_escaped_in_the_page_and_the_email(api: ConsentApi) -> None:
    body = add_customer_body(
        friendly_name=f"{SCRIPT} Fabrikam",
        customer_contact={"name": f"Ana {SCRIPT}", "email": "ana@fabrikam.com", "language": "es"},
    )
    token = api.requested(api.add_claim(body))
    page = api.page(token).body
    email = str(sent_messages()[-1].body)  # moto keeps the HTML part
    for html in (page, email):
        assert "<script" not in html.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# Query strings a link scanner or a crafted link could add to a GET or HEAD: (raw query, as API Gateway parses it).
CRAFTED_QUERIES: dict[str, tuple[str, dict[str, str]]] = {
    "accept": ("decision=accept", {"decision": "accept"}),
    "decline": ("decision=decline", {"decision": "decline"}),
    "repeated": ("decision=accept&decision=accept", {"decision": "accept,accept"}),
    "both": ("decision=accept&decision=decline", {"decision": "accept,decline"}),
    "encoded": ("decision=%61ccept", {"decision": "accept"}),
    "junk": ("decision%3Daccept&x=%00%ff&=&&decision", {"decision=accept": "", "x": "\x00\ufffd"}),
    "upper": ("DECISION=ACCEPT", {"DECISION": "ACCEPT"}),
}


def crafted_page(
    api: ConsentApi, token: str, method: str, raw_query: str, query: dict[str, str], form: str | None
) -> tuple[int, str]:
    """The page as a link scanner fetches it: any query string, and maybe a form body, on GET or HEAD.

    The event is built by hand (routed by the template) because its raw query string is not the one
    ``http_event`` would write from the parsed ``query``."""
    route, path_parameters = template_route(method, f"/consent/{token}")
    event = http_event(
        method,
        f"/consent/{token}",
        route_key=route.route_key,
        raw_body=form,
        headers={"content-type": "application/x-www-form-urlencoded"} if form is not None else None,
        path_parameters=path_parameters,
        query=query,
    )
    event["rawQueryString"] = raw_query
    raw = route_handler(route.route)(event, api.public.context)
    body = raw.get("body") or ""
    return raw["statusCode"], base64.b64decode(body).decode() if raw.get("isBase64Encoded") else body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("with_body", [False, True], ids=["no-body", "form-body"])
@pytest.mark.parametrize("name", list(CRAFTED_QUERIES))
def test_no_query_string_or_body_on_get_or_head_records_a_decision(
    api: ConsentApi, dynamodb: DynamoDBClient, method: str, with_body: bool, name: str
) -> None:
    """Rule 15: only a POST from the page decides; a GET or HEAD with any query or body changes nothing."""
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    stored_before, claim_before = every_item(dynamodb), api.claim(claim_id)
    raw_query, query = CRAFTED_QUERIES[name]
    form = "decision=accept" if with_body else None
    for _ in range(2):
        status, body = crafted_page(api, token, method, raw_query, query, form)
        assert status == 200
        assert ("Doy mi consentimiento" in body) is (method == "GET")  # the question, not an answer
    assert every_item(dynamodb) == stored_before  # claim, history, counters, guards, token: no stream event either
    assert api.claim(claim_id) == claim_before
    assert len(sent_messages()) == 1  # no notice to the partner
    assert api.page(token).status == 200  # the link still works
    assert api.decide(token, "decline").status == 200
    assert api.claim(claim_id)["state"] == "consent_declined"


# ---------------------------------------------------------------- one neutral page


def test_used_expired_unknown_and_malformed_links_get_one_neutral_page(
    api: ConsentApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    used = api.requested(api.add_claim())
    assert api.decide(used, "accept").status == 200
    expiring_claim = api.add_claim(add_customer_body(engagement_ids=[SECURITY]))
    expired = api.requested(expiring_claim)
    clock.advance(timedelta(days=30))
    before = [snapshot(dynamodb, c) for c in (expiring_claim,)]
    links = {
        "used": used,
        "expired": expired,
        "unknown": "Q" * 43,
        "short": "abc",
        "long": "A" * 300,
        "padding": "A" * 42 + "=",
        # a token of dots and a literal %2F (sent encoded twice: API Gateway decodes the path once, and a %2F sent
        # once is a "/" that no route takes, below)
        "dots": "..%252F..%252Fetc",
        # characters API Gateway decodes that Powertools' path pattern refuses (a backslash, a control character)
        "odd": "l%C3%87%5C-%0F",
    }
    with pytest.raises(NoSuchRoute):
        api.page("..%2F..%2Fetc")
    answers = {name: api.page(token) for name, token in links.items()}
    heads = {name: api.page(token, "HEAD") for name, token in links.items()}
    posts = {name: api.decide(token, "accept") for name, token in links.items()}
    reference = answers["unknown"]
    assert reference.status == 404
    assert "This link is not valid" in reference.body
    for name in links:
        for answer in (answers[name], posts[name]):
            assert (answer.status, answer.body) == (404, reference.body), name
            assert answer.headers == reference.headers, name
        assert (heads[name].status, heads[name].body) == (404, ""), name
        assert_page_headers(heads[name])
    assert [snapshot(dynamodb, c) for c in (expiring_claim,)] == before
    assert stored_claim(dynamodb, expiring_claim)["state"] == {"S": "consent_requested"}
    assert len(sent_messages()) == 3  # two requests and one notice for the accepted claim


@pytest.mark.parametrize(
    "form",
    [None, "", "decision=", "decision=maybe", "decision=ACCEPT", "decision=accept&decision=decline", "accept=1"],
)
def test_a_post_without_one_valid_decision_changes_nothing(
    api: ConsentApi, dynamodb: DynamoDBClient, form: str | None
) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    before = snapshot(dynamodb, claim_id)
    answer = api.page(token, "POST", form)
    assert answer.status == 400
    assert_page_headers(answer)
    assert "Doy mi consentimiento" in answer.body  # the page again, to answer properly
    assert snapshot(dynamodb, claim_id) == before
    assert len(sent_messages()) == 1


def test_an_oversized_form_changes_nothing(api: ConsentApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    before = snapshot(dynamodb, claim_id)
    answer = api.page(token, "POST", "decision=accept&pad=" + "x" * 2000)
    assert answer.status == 400
    assert snapshot(dynamodb, claim_id) == before


# ---------------------------------------------------------------- decisions


def test_accepting_grants_consent_tells_the_partner_and_makes_a_known_customer(
    api: ConsentApi, clock: FixedClock
) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    clock.advance(timedelta(days=2, hours=3))
    done = api.decide(token, "accept")
    assert done.status == 200
    assert_page_headers(done)
    assert "Gracias: su consentimiento ha quedado registrado" in done.body
    claim = api.claim(claim_id)
    assert claim["state"] == "consent_granted"
    assert claim["submission_deadline"] == "2027-02-27T13:00:00Z"  # 29 Nov 2026 13:00 + 90 days
    assert claim["consent_decision"]["decision"] == "accept"
    assert claim["history"][-1]["to"] == "consent_granted"
    notice = sent_messages()[-1]
    assert recipients(notice) == ["sam@contoso-partners.com"]
    assert notice.subject == "Consent granted for Fabrikam migration (Azure Migrate assessment)"
    assert "27 February 2027" in notice.body
    known = api.known_customers()
    assert known.status == 200
    [customer] = known.body["items"]
    assert customer["customer_id"] == f"tenant_id:{FABRIKAM_TENANT}"
    assert customer["identifier"] == {"type": "tenant_id", "value": FABRIKAM_TENANT}
    assert customer["last_claim_id"] == claim_id
    assert api.page(token).status == 404


def test_declining_ends_the_claim_and_releases_the_customer(api: ConsentApi, lambda_context: Any) -> None:
    northwind = Caller(NORTHWIND, ["incentives_user"], lambda_context)
    claim_id = api.add_claim(add_customer_body(engagement_ids=[SECURITY]))  # limit 1 per customer
    token = api.requested(claim_id)
    full = northwind.post("/customers", northwind_body(engagement_ids=[SECURITY]))
    assert (full.status, full.code) == (409, "active_claim_limit_reached")

    done = api.decide(token, "decline")
    assert done.status == 200
    assert "Su respuesta ha quedado registrada" in done.body
    claim = api.claim(claim_id)
    assert claim["state"] == "consent_declined"
    assert claim["submission_deadline"] is None
    notice = sent_messages()[-1]
    assert recipients(notice) == ["sam@contoso-partners.com"]
    assert notice.subject == "Consent declined for Fabrikam migration (Security workshop)"
    assert api.known_customers().body["items"] == []

    freed = northwind.post("/customers", northwind_body(engagement_ids=[SECURITY]))
    assert freed.status == 201, freed.body
    assert api.page(token).status == 404
    assert api.decide(token, "accept").status == 404
    assert api.claim(claim_id)["state"] == "consent_declined"


class CommitsFirst:
    """A claim store that lets another decision commit between this decision's read and its write.

    moto's DynamoDB is not atomic under threads (see the report), so the race is staged exactly: the
    first decision reads the live claim, the second decision runs to completion, then the first writes.
    """

    def __init__(self, inner: Any, other: Any) -> None:
        self._inner = inner
        self._other = other
        self.applies = 0
        self.other_answer: Any = None

    def apply(self, change: Any) -> None:
        self.applies += 1
        if self.other_answer is None:
            self.other_answer = "running"
            self.other_answer = self._other()
        self._inner.apply(change)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize(("first", "second"), [("accept", "decline"), ("decline", "accept")])
def test_of_two_answers_at_the_same_moment_exactly_one_wins(
    api: ConsentApi, dynamodb: DynamoDBClient, first: str, second: str
) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    decisions = wiring.consent_decisions()
    staged = CommitsFirst(decisions.claims, lambda: api.decide(token, second))
    decisions.claims = staged  # type: ignore[assignment]
    decisions.outbox.claims = staged  # type: ignore[assignment]
    late = api.decide(token, first)
    assert staged.other_answer.status == 200
    assert (late.status, late.body) == (404, api.page("Q" * 43).body)
    expected = "consent_granted" if second == "accept" else "consent_declined"
    assert api.claim(claim_id)["state"] == expected
    assert [h["to"] for h in api.claim(claim_id)["history"]].count(expected) == 1
    assert len(sent_messages()) == 2  # the request and one notice
    assert len(api.known_customers().body["items"]) == (1 if second == "accept" else 0)
    # the winner's decision and its outbox clearance, then the late write: tried once, refused, not retried
    assert staged.applies == 3


# ---------------------------------------------------------------- logs (LG2, CL12)


@pytest.fixture
def every_log_line(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, the production level (template Globals), in the service's own
    JSON format: the Powertools logger (which does not propagate) and every other logger through the root."""
    caplog.set_level(logging.INFO)
    with service_log_lines("INFO") as stream:
        yield stream


def secrets_in(logged: str, token: str) -> list[str]:
    """What of the consent link and the contact's name and email the logged text holds (nothing, always)."""
    secrets = {
        "link": token,
        "link hash": hashlib.sha256(token.encode()).hexdigest(),
        "contact email": "ana@fabrikam.com",
        "contact name": "Ana García",
    }
    return [name for name, value in secrets.items() if value in logged]


def test_neither_the_link_nor_the_contacts_email_reaches_a_log(
    api: ConsentApi,
    every_log_line: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    assert api.page(token).status == 200
    assert api.decide(token, "accept").status == 200
    # A forced 500 on the page logs a traceback (resolver's catch-all): it must not carry the link either.
    module = importlib.import_module("functions.consent_page.app")

    def broken() -> Any:
        raise RuntimeError("the store is broken")

    monkeypatch.setattr(module, "consent_decisions", broken)
    assert api.page(token).status == 500

    output = capsys.readouterr()
    logged = every_log_line.getvalue() + caplog.text + output.out + output.err
    assert "unexpected error" in logged  # the capture does see the service's log lines
    assert secrets_in(logged, token) == []


def test_every_line_of_a_request_carries_its_correlation_id_the_lambda_context_and_the_claim(
    api: ConsentApi, every_log_line: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logging is applied once at the edge (mci.observability): each line of one request carries that request's
    id as correlation id, the Lambda context and cold-start flag, and the partner and claim when known."""
    from mci.observability import logger

    claim_id = api.add_claim()
    module = importlib.import_module("mci.http.reads.claims")  # GET /claims/{claim_id}, served by the reads function

    def broken(*_: Any) -> Any:
        logger.info("reading the claim")
        raise RuntimeError("the store is broken")

    monkeypatch.setattr(module, "claim_details", broken)
    start = len(every_log_line.getvalue().splitlines())
    assert api.get_claim(claim_id).status == 500
    assert api.get_claim(claim_id).status == 500
    lines = [json.loads(line) for line in every_log_line.getvalue().splitlines()[start:]]
    assert [line["message"] for line in lines] == ["reading the claim", "unexpected error"] * 2
    first, second = lines[:2], lines[2:]
    for request in (first, second):
        assert {line["correlation_id"] for line in request} == {request[0]["correlation_id"]}
        assert all(line["claim_id"] == claim_id and line["partner_id"] == CONTOSO for line in request)
        assert all(line["function_name"] and "cold_start" in line for line in request)
    assert first[0]["correlation_id"] != second[0]["correlation_id"]  # one per request, none left over


def test_the_customers_decision_keeps_its_request_id_in_the_claims_history(
    api: ConsentApi, seeded: DynamoDBClient
) -> None:
    """The correlation id of the decision's log lines (the API request id) is in the audit history, as a
    partner's changes already are (docs/data-model.md)."""
    from mci.adapters.dynamodb_claims import claim_from_item

    claim_id = api.add_claim()
    token = api.requested(claim_id)
    assert api.decide(token, "accept").status == 200
    history = claim_from_item(stored_claim(seeded, claim_id)).history
    assert [h.to.value for h in history][-1] == "consent_granted"
    requested, decided = history[-2].request_id, history[-1].request_id
    assert decided
    assert requested
    assert decided != requested


def test_the_event_handlers_lines_carry_a_correlation_id_and_never_a_contact_or_a_link(
    api: ConsentApi,
    every_log_line: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    clock: FixedClock,
    lambda_context: Any,
) -> None:
    """The log test extended to every line the sweep, the SES feedback handler and the publisher write."""
    from tests.moto.test_ses_feedback import deliver, feedback

    claim_id = api.add_claim()
    token = api.requested(claim_id)
    message_id = api.claim(claim_id)["consent_email"]["message_id"]
    start = len(every_log_line.getvalue().splitlines())
    assert deliver(feedback("ses_bounce", claim_id, message_id), lambda_context) == {"updated": True}
    clock.advance(timedelta(days=23))  # the 7-day reminder is due
    sweep = importlib.import_module("functions.expire_claims.app").lambda_handler({}, lambda_context)
    assert sweep["reminded"] == 1
    record = {"eventID": "stream-event-1", "eventName": "MODIFY", "dynamodb": {"SequenceNumber": "7", "NewImage": 1}}
    publisher = importlib.import_module("functions.publish_events.app").lambda_handler
    assert publisher({"Records": [record]}, lambda_context) == {"batchItemFailures": []}

    lines = [json.loads(line) for line in every_log_line.getvalue().splitlines()[start:]]
    messages = {line["message"]: line for line in lines}
    assert {"SES feedback", "sweep finished", "poison record", "stream batch"} <= set(messages)
    assert messages["SES feedback"]["claim_id"] == claim_id
    assert messages["poison record"]["correlation_id"] == messages["stream batch"]["correlation_id"] == "stream-event-1"
    assert all(line["correlation_id"] and "cold_start" in line for line in lines)
    output = capsys.readouterr()
    logged = every_log_line.getvalue() + caplog.text + output.out + output.err
    assert secrets_in(logged, token) == []
