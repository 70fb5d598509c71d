"""Whatever a client sends, the answer is a 4xx problem, never a 500, and nothing is written (SPEC §4)."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.cloudformation import Route as TemplateRoute
from local.cloudformation import routes
from local.events import http_event, jwt_claims
from local.handler_calls import route_handler, template_route
from mci.domain.principal import OPERATIONS_PARTNER_ID
from mci.settings import get_settings
from tests.support.access import ACCESS_TABLE
from tests.support.api import Answer, Caller
from tests.support.reference import (
    AI,
    CONTOSO,
    CONTOSO_MADRID,
    FABRIKAM_TENANT,
    MIGRATE,
    SECURITY,
    add_customer_body,
    demo_json,
)


@dataclass(frozen=True)
class Route:
    path: str
    roles: tuple[str, ...]
    valid: dict[str, Any]


ROUTES = {
    "customers": Route("/customers", ("incentives_user",), add_customer_body()),
    "eligibility": Route(
        "/eligibility-checks",
        ("incentives_user",),
        {
            "location_id": CONTOSO_MADRID,
            "identifier": {"type": "tenant_id", "value": FABRIKAM_TENANT},
            "customer_email": "ana@fabrikam.com",
        },
    ),
    "quotes": Route(
        "/payment-quotes",
        ("incentives_user",),
        {"engagement_id": AI, "location_id": CONTOSO_MADRID, "msx_opportunity_id": "7-ABC123XYZ", "hours": 10},
    ),
    "reference": Route("/ops/reference-data", ("mci_operations",), demo_json()),
}
ROUTE_NAMES = list(ROUTES)


class Api:
    """Calls a route as a user allowed to use it, and knows how many items each table held before."""

    def __init__(self, client: Any, lambda_context: Any) -> None:
        self.client = client
        self.lambda_context = lambda_context
        self.check_on_teardown = True
        self.before = self.counts()

    def counts(self) -> tuple[int, int]:
        def count(table: str) -> int:
            pages = self.client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
            return sum(p["Count"] for p in pages)

        return count("ClaimsTable"), count("IdempotencyTable")

    def unchanged(self) -> bool:
        return self.counts() == self.before

    def __call__(self, name: str, body: Any = None, *, raw_body: str | None = None, **kwargs: Any) -> Answer:
        route = ROUTES[name]
        partner_id = OPERATIONS_PARTNER_ID if route.path.startswith("/ops/") else CONTOSO  # rule 30
        caller = Caller(partner_id, list(route.roles), self.lambda_context)
        return caller.post(route.path, body, raw_body=raw_body, **kwargs)


@pytest.fixture
def api(seeded: Any, lambda_context: Any) -> Iterator[Api]:
    """Every refusal in this module must leave both tables exactly as they were."""
    calls = Api(seeded, lambda_context)
    yield calls
    if calls.check_on_teardown:
        assert calls.unchanged(), "a refused request wrote to a table"


def assert_refused(answer: Answer, status: int | None = None, code: str | None = None) -> dict[str, Any]:
    assert 400 <= answer.status < 500, (answer.status, answer.body)
    if status is not None:
        assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = answer.body
    assert problem["status"] == answer.status
    assert problem["code"]
    assert problem["title"]
    assert problem["detail"]
    assert problem["type"].endswith("/" + problem["code"])
    if code is not None:
        assert problem["code"] == code
    if problem["code"] == "validation_error":
        assert problem["errors"], problem
        for error in problem["errors"]:
            assert set(error) == {"field", "message", "code"}
            assert error["field"]
            assert error["message"]
    return problem


def fields(answer: Answer) -> list[str]:
    return [e["field"] for e in assert_refused(answer, 422, "validation_error")["errors"]]


def with_path(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with ``value`` set at ``path``."""
    result = copy.deepcopy(body)
    target = result
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return result


# --- the same refusals on every route -------------------------------------------------------------------

SHAPELESS = {
    "malformed JSON": "{bad json",
    "truncated JSON": '{"location_id": "1234567"',
    "trailing comma": '{"location_id": "1234567",}',
    "JSON array": "[]",
    "empty body": "",
    "whitespace": "   ",
    "null": "null",
    "string": '"hello"',
    "number": "42",
    "true": "true",
    "empty object": "{}",
    "huge number": '{"hours": 1e999999}',
    "not UTF-8 JSON": "\ufeff{}",
    "NaN": '{"hours": NaN}',
}


@pytest.mark.parametrize("route", ROUTE_NAMES)
@pytest.mark.parametrize("raw", list(SHAPELESS.values()), ids=list(SHAPELESS))
def test_a_body_that_is_not_an_object_of_fields(api: Api, route: str, raw: str) -> None:
    answer = api(route, raw_body=raw)
    if route == "reference" and raw == "{}":
        assert answer.status == 200  # every list of a reference load is optional
        return
    assert_refused(answer, 422, "validation_error")


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_an_array_of_bodies_is_refused(api: Api, route: str) -> None:
    api.check_on_teardown = False  # checked here, so the expected failure is the assertion below
    answers = [
        api(route, raw_body=json.dumps([ROUTES[route].valid])),
        api(route, raw_body=json.dumps([ROUTES[route].valid, {"junk": True}])),
        api(route, raw_body="[{}]"),
    ]
    assert all(a.status == 422 for a in answers), [a.status for a in answers]
    assert all(fields(a) == ["body"] for a in answers)
    assert api.unchanged()


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_malformed_json_names_the_body(api: Api, route: str) -> None:
    assert fields(api(route, raw_body="{bad json")) == ["body"]


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_a_body_over_the_limit_is_413(api: Api, route: str) -> None:
    body = copy.deepcopy(ROUTES[route].valid)
    body["padding"] = "x" * 70_000
    assert_refused(api(route, body), 413, "payload_too_large")
    assert_refused(api(route, raw_body="x" * 70_000), 413, "payload_too_large")


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_every_unknown_top_level_field_is_named(api: Api, route: str) -> None:
    body = {**ROUTES[route].valid, "partner_id": "p-northwind-consulting", "extra": 1, "Location_Id": "1234567"}
    assert sorted(fields(api(route, body))) == ["Location_Id", "extra", "partner_id"]


# --- unknown nested fields -----------------------------------------------------------------------------

NESTED = [
    ("customers", ("identifier", "tenant"), "identifier.tenant"),
    ("customers", ("customer_contact", "title"), "customer_contact.title"),
    ("customers", ("partner_contact", "language"), "partner_contact.language"),
    ("eligibility", ("identifier", "extra"), "identifier.extra"),
    ("reference", ("engagements", 0, "owner"), "engagements[0].owner"),
    ("reference", ("engagements", 0, "criteria", "industries"), "engagements[0].criteria.industries"),
    ("reference", ("engagements", 0, "referral", "type"), "engagements[0].referral.type"),
    ("reference", ("engagements", 2, "payment_rules", "bonus"), "engagements[2].payment_rules.bonus"),
    ("reference", ("locations", 1, "city"), "locations[1].city"),
    ("reference", ("customers", 3, "email"), "customers[3].email"),
    ("reference", ("domains", 0, "mx"), "domains[0].mx"),
]


@pytest.mark.parametrize(("route", "path", "field"), NESTED, ids=[n[2] for n in NESTED])
def test_unknown_nested_fields_are_named(api: Api, route: str, path: tuple[Any, ...], field: str) -> None:
    assert fields(api(route, with_path(ROUTES[route].valid, path, "surprise"))) == [field]


def test_several_unknown_fields_are_all_named(api: Api) -> None:
    body = with_path(add_customer_body(), ("identifier", "a"), 1)
    body = with_path(body, ("customer_contact", "b"), 2)
    body["c"] = 3
    assert sorted(fields(api("customers", body))) == ["c", "customer_contact.b", "identifier.a"]


# --- wrong types ---------------------------------------------------------------------------------------

WRONG_TYPES = [
    ("customers", ("friendly_name",), 5, "friendly_name"),
    ("customers", ("location_id",), 1234567, "location_id"),
    ("customers", ("identifier",), "fabrikam.com", "identifier"),
    ("customers", ("identifier", "type"), ["domain"], "identifier.type"),
    ("customers", ("identifier", "value"), {"v": 1}, "identifier.value"),
    ("customers", ("engagement_ids",), MIGRATE, "engagement_ids"),
    ("customers", ("engagement_ids",), [1], "engagement_ids[0]"),
    ("customers", ("engagement_ids",), {"0": MIGRATE}, "engagement_ids"),
    ("customers", ("hours",), 1.5, "hours"),
    ("customers", ("hours",), "10", "hours"),
    ("customers", ("customer_contact",), "Ana", "customer_contact"),
    ("customers", ("customer_contact", "language"), "fr", "customer_contact.language"),
    ("customers", ("customer_contact", "email"), "not-an-email", "customer_contact.email"),
    ("customers", ("customer_contact", "email"), "ana@not a domain", "customer_contact.email"),
    ("customers", ("customer_contact", "phone"), "call me", "customer_contact.phone"),
    ("customers", ("partner_contact", "email"), 42, "partner_contact.email"),
    ("customers", ("tenant_mismatch_reason",), ["why"], "tenant_mismatch_reason"),
    ("customers", ("friendly_name",), "   ", "friendly_name"),
    ("eligibility", ("location_id",), "123", "location_id"),
    ("eligibility", ("identifier",), None, "identifier"),
    ("eligibility", ("identifier", "type"), "email", "identifier.type"),
    ("eligibility", ("customer_email",), 7, "customer_email"),
    ("quotes", ("hours",), 1.5, "hours"),
    ("quotes", ("hours",), "10", "hours"),
    ("quotes", ("hours",), True, "hours"),
    ("quotes", ("engagement_id",), ["e-ai-accelerate"], "engagement_id"),
    ("quotes", ("msx_opportunity_id",), 7, "msx_opportunity_id"),
    ("reference", ("engagements",), {"e": 1}, "engagements"),
    ("reference", ("engagements", 0, "payment_type"), "hourly", "engagements[0].payment_type"),
    ("reference", ("engagements", 0, "opens_on"), "next year", "engagements[0].opens_on"),
    ("reference", ("engagements", 0, "identifier_types"), "domain", "engagements[0].identifier_types"),
    ("reference", ("engagements", 0, "criteria"), ["SMB"], "engagements[0].criteria"),
    ("reference", ("locations", 0, "eligible_engagements"), MIGRATE, "locations[0].eligible_engagements"),
    ("reference", ("locations", 0, "enrolled_in_mci"), [True], "locations[0].enrolled_in_mci"),
    ("reference", ("customers", 0, "opportunity_value_usd"), "lots", "customers[0].opportunity_value_usd"),
    ("reference", ("domains",), "fabrikam.com", "domains"),
    # rule 27: strict types, a JSON string is never a number or a boolean, nor a boolean a number
    ("customers", ("hours",), True, "hours"),
    ("quotes", ("hours",), "1e1", "hours"),
    ("reference", ("engagements", 0, "consent_window_days"), "30", "engagements[0].consent_window_days"),
    ("reference", ("engagements", 0, "submission_window_days"), True, "engagements[0].submission_window_days"),
    (
        "reference",
        ("engagements", 0, "max_active_claims_per_customer"),
        "1",
        "engagements[0].max_active_claims_per_customer",
    ),
    ("reference", ("engagements", 0, "referral", "enabled"), "true", "engagements[0].referral.enabled"),
    ("reference", ("engagements", 0, "referral", "enabled"), 1, "engagements[0].referral.enabled"),
    (
        "reference",
        ("engagements", 0, "referral", "min_deal_size_usd"),
        "10000",
        "engagements[0].referral.min_deal_size_usd",
    ),
    (
        "reference",
        ("engagements", 2, "payment_rules", "hourly_rate_usd"),
        "100",
        "engagements[2].payment_rules.hourly_rate_usd",
    ),
    ("reference", ("engagements", 2, "payment_rules", "min_hours"), "1", "engagements[2].payment_rules.min_hours"),
    (
        "reference",
        ("engagements", 2, "payment_rules", "max_opportunity_share"),
        "0.5",
        "engagements[2].payment_rules.max_opportunity_share",
    ),
    ("reference", ("locations", 0, "enrolled_in_mci"), "true", "locations[0].enrolled_in_mci"),
    ("reference", ("customers", 0, "cosell_allowed"), 1, "customers[0].cosell_allowed"),
    ("reference", ("customers", 0, "opportunity_value_usd"), "500", "customers[0].opportunity_value_usd"),
    ("reference", ("customers", 0, "opportunity_value_usd"), False, "customers[0].opportunity_value_usd"),
]


@pytest.mark.parametrize(
    ("route", "path", "value", "field"), WRONG_TYPES, ids=[f"{w[0]}:{w[3]}={w[2]!r}" for w in WRONG_TYPES]
)
def test_wrong_types_are_named(api: Api, route: str, path: tuple[Any, ...], value: Any, field: str) -> None:
    assert fields(api(route, with_path(ROUTES[route].valid, path, value))) == [field]


MISSING = [
    ("customers", "friendly_name"),
    ("customers", "location_id"),
    ("customers", "identifier"),
    ("customers", "engagement_ids"),
    ("customers", "customer_contact"),
    ("customers", "partner_contact"),
    ("eligibility", "location_id"),
    ("eligibility", "identifier"),
    ("quotes", "engagement_id"),
    ("quotes", "location_id"),
    ("quotes", "msx_opportunity_id"),
    ("quotes", "hours"),
]


@pytest.mark.parametrize(("route", "field"), MISSING)
def test_missing_required_fields_are_named(api: Api, route: str, field: str) -> None:
    body = {k: v for k, v in ROUTES[route].valid.items() if k != field}
    answer = api(route, body)
    assert fields(answer) == [field]
    assert answer.body["errors"][0]["code"] == "missing"


# --- sizes ------------------------------------------------------------------------------------------

OVERSIZE = [
    ("customers", ("friendly_name",), "x" * 101, "friendly_name"),
    ("customers", ("tenant_mismatch_reason",), "x" * 501, "tenant_mismatch_reason"),
    ("customers", ("identifier", "value"), "a" * 254, "identifier.value"),
    ("customers", ("customer_contact", "name"), "x" * 201, "customer_contact.name"),
    ("customers", ("customer_contact", "email"), "a" * 250 + "@fabrikam.com", "customer_contact.email"),
    ("customers", ("partner_contact", "phone"), "1" * 21, "partner_contact.phone"),
    ("customers", ("engagement_ids",), [f"e-{n}" for n in range(11)], "engagement_ids"),
    ("customers", ("engagement_ids",), [], "engagement_ids"),
    ("customers", ("engagement_ids",), ["e" * 65], "engagement_ids[0]"),
    ("eligibility", ("customer_email",), "a" * 255, "customer_email"),
    ("eligibility", ("identifier", "value"), "1" * 254, "identifier.value"),
    ("quotes", ("msx_opportunity_id",), "7-" + "A" * 63, "msx_opportunity_id"),
    ("quotes", ("hours",), 10_001, "hours"),
    ("reference", ("engagements", 0, "name"), "x" * 201, "engagements[0].name"),
    ("reference", ("engagements", 0, "criteria", "segments"), ["SMB"] * 51, "engagements[0].criteria.segments"),
    ("reference", ("locations", 0, "eligible_engagements"), ["e-x"] * 501, "locations[0].eligible_engagements"),
    ("reference", ("customers", 0, "segment"), "S" * 41, "customers[0].segment"),
    ("reference", ("customers", 0, "value"), "1" * 254, "customers[0].value"),
    ("reference", ("domains", 0, "tenant_id"), "f" * 65, "domains[0].tenant_id"),
]


@pytest.mark.parametrize(("route", "path", "value", "field"), OVERSIZE, ids=[f"{o[0]}:{o[3]}" for o in OVERSIZE])
def test_oversize_strings_and_lists_are_named(
    api: Api, route: str, path: tuple[Any, ...], value: Any, field: str
) -> None:
    assert fields(api(route, with_path(ROUTES[route].valid, path, value))) == [field]


def test_too_many_engagements_is_refused_before_any_lookup(api: Api) -> None:
    answer = api("customers", add_customer_body(engagement_ids=[MIGRATE, SECURITY] * 6))
    assert fields(answer) == ["engagement_ids"]
    assert answer.body["errors"][0]["code"] == "too_long"


# --- well formed, but naming things that do not exist ------------------------------------------------------


@pytest.mark.parametrize(
    ("engagement_ids", "named"),
    [
        (["e-nope"], ["engagement_ids[0]"]),
        ([MIGRATE, "e-nope"], ["engagement_ids[1]"]),
        (["e-nope", SECURITY, "e-gone"], ["engagement_ids[0]", "engagement_ids[2]"]),
    ],
)
def test_unknown_engagements_are_named_by_position(api: Api, engagement_ids: list[str], named: list[str]) -> None:
    assert fields(api("customers", add_customer_body(engagement_ids=engagement_ids))) == named


def test_an_unknown_engagement_in_a_quote_is_named(api: Api) -> None:
    assert fields(api("quotes", {**ROUTES["quotes"].valid, "engagement_id": "e-nope"})) == ["engagement_id"]


def test_a_bad_body_with_an_idempotency_key_stores_no_key(api: Api) -> None:
    """The fixture checks the idempotency table too: a refused body leaves no key behind."""
    answer = api("customers", add_customer_body(engagement_ids=[]), headers={"Idempotency-Key": "bad-body"})
    assert fields(answer) == ["engagement_ids"]


# --- how API Gateway hands bodies over: plain text or base64 ---------------------------------------------


def raw_event_call(seeded: Any, lambda_context: Any, body: str, *, base64_encoded: bool) -> dict[str, Any]:
    """The reference-data handler's own result for a body sent as is or base64 (an event built by hand)."""
    event = http_event(
        "POST", "/ops/reference-data", raw_body=body, claims=jwt_claims(OPERATIONS_PARTNER_ID, ["mci_operations"])
    )
    if not base64_encoded:
        event["body"] = body
        event["isBase64Encoded"] = False
    api_route, _ = template_route("POST", "/ops/reference-data")
    result: dict[str, Any] = route_handler(api_route.route)(event, lambda_context)
    return result


def customers_body(count: int, name_length: int = 8) -> str:
    records = [
        {
            "identifier_type": "tpid",
            "value": str(10_000 + i),
            "name": "N" * name_length,
            "segment": "SMB",
            "country": "US",
        }
        for i in range(count)
    ]
    return json.dumps({"customers": records}, ensure_ascii=False)


def test_a_plain_text_body_over_the_limit_is_413(seeded: Any, lambda_context: Any) -> None:
    body = customers_body(1000)
    assert len(body.encode()) > 64 * 1024
    assert raw_event_call(seeded, lambda_context, body, base64_encoded=False)["statusCode"] == 413


def test_a_base64_body_under_the_limit_is_accepted(seeded: Any, lambda_context: Any) -> None:
    body = customers_body(500)
    assert 48 * 1024 < len(body.encode()) < 64 * 1024
    result = raw_event_call(seeded, lambda_context, body, base64_encoded=True)
    assert result["statusCode"] == 200, result["body"]


def test_a_multibyte_body_over_the_limit_is_413(seeded: Any, lambda_context: Any) -> None:
    body = json.dumps({"customers": [{"name": "é" * 40_000}]}, ensure_ascii=False)
    assert len(body) < 64 * 1024 < len(body.encode())
    assert raw_event_call(seeded, lambda_context, body, base64_encoded=False)["statusCode"] == 413


# --- exact answers to a body of the wrong media type or not UTF-8 (F1, F2 in docs/security.md) ------------


def raw_bytes_call(route: Route, lambda_context: Any, body: bytes, content_type: str) -> Answer:
    """A route called with exactly these body bytes (base64, as API Gateway hands a binary body over)."""
    event = http_event(
        "POST",
        route.path,
        raw_body="",
        claims=jwt_claims(CONTOSO, list(route.roles)),
        headers={"content-type": content_type},
    )
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    # An event built by hand: http_event cannot carry body bytes that are not UTF-8; the template still routes it.
    api_route, _ = template_route("POST", route.path)
    return Answer.of_result(route_handler(api_route.route)(event, lambda_context))


@pytest.mark.parametrize("route", ROUTE_NAMES)
@pytest.mark.parametrize("media_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_an_unsupported_media_type_is_415(api: Api, route: str, media_type: str) -> None:
    body = json.dumps(ROUTES[route].valid).encode()
    answer = raw_bytes_call(ROUTES[route], api.lambda_context, body, media_type)

    assert_refused(answer, 415, "unsupported_media_type")
    assert answer.body["detail"] == "Send the body as application/json."


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_a_body_that_is_not_utf8_is_422_naming_the_body(api: Api, route: str) -> None:
    answer = raw_bytes_call(ROUTES[route], api.lambda_context, b'{"reason": "\xff"}', "application/json")

    assert_refused(answer, 422, "validation_error")
    assert answer.body["errors"] == [{"field": "body", "message": "must be UTF-8 text", "code": "json_invalid"}]


# --- every JSON route of the template: depth and media type (rule 27; N1, N2 in docs/security.md) -------------

JSON_ROUTES = [r for r in routes() if r.method == "POST" and r.authorized]


def json_route_call(route: TemplateRoute, lambda_context: Any, raw_body: str, content_type: str) -> Answer:
    """The route's handler called by a user it accepts, with exactly this body and Content-Type."""
    rules = ACCESS_TABLE[f"{route.method} {route.path}"]
    path = re.sub(r"\{[^}]+\}", "4f7d2a3b-0000-4000-8000-000000000001", route.path)
    roles = sorted(rules.roles or ())[:1]
    partner = "mci-operations" if roles == ["mci_operations"] else CONTOSO
    event = http_event(
        "POST",
        path,
        route_key=f"POST {route.path}",
        raw_body=raw_body,
        claims=jwt_claims(partner, roles),
        headers={"content-type": content_type},
    )
    return Answer.of_result(route_handler(route)(event, lambda_context))


DEPTH = get_settings().max_body_depth  # the body object plus DEPTH arrays: one level too deep
NESTING = {
    "arrays": "[" * 1000 + "]" * 1000,
    "objects": '{"a":' * 1000 + "1" + "}" * 1000,
    "arrays in a field": '{"reason": ' + "[" * 1000 + "]" * 1000 + "}",
    "just over the limit": '{"reason": ' + "[" * DEPTH + "]" * DEPTH + "}",
}


@pytest.mark.parametrize("route", JSON_ROUTES, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("shape", list(NESTING), ids=list(NESTING))
def test_a_deeply_nested_body_is_422_naming_the_body(
    seeded: Any, lambda_context: Any, route: TemplateRoute, shape: str
) -> None:
    answer = json_route_call(route, lambda_context, NESTING[shape], "application/json")

    assert_refused(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["body"]


@pytest.mark.parametrize("route", JSON_ROUTES, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize(
    "content_type", ["Application/JSON", "APPLICATION/JSON; charset=UTF-8", "application/json;charset=utf-8"]
)
def test_the_json_media_type_is_matched_case_insensitively(
    seeded: Any, lambda_context: Any, route: TemplateRoute, content_type: str
) -> None:
    """RFC 9110: media types are case-insensitive; the body is then read as JSON like any other."""
    answer = json_route_call(route, lambda_context, '{"not_a_field": 1}', content_type)

    assert answer.status != 415, answer.body
    assert 400 <= answer.status < 500, answer.body
    assert answer.headers["content-type"] == "application/problem+json"


def test_brackets_inside_strings_are_not_nesting(api: Api) -> None:
    for text in ("[{" * 60, '"[{\\' * 40):  # JSON escapes the quotes and backslashes: still inside the string
        body = with_path(ROUTES["eligibility"].valid, ("identifier", "value"), text)
        assert fields(api("eligibility", body)) == ["identifier.value"]


# --- free text and addresses the service writes to (rule 28; N3, N4 in docs/security.md) -----------------

CONTROL_CHARACTERS = ["\r\nBcc: a@evil.example", "\n", "\t", "\x00", "\x1b[31m", "\x7f", "\x85", "\u2028"]
FREE_TEXT = [
    ("customers", ("friendly_name",), "friendly_name"),
    ("customers", ("tenant_mismatch_reason",), "tenant_mismatch_reason"),
    ("customers", ("customer_contact", "name"), "customer_contact.name"),
    ("customers", ("partner_contact", "name"), "partner_contact.name"),
    ("customers", ("customer_contact", "phone"), "customer_contact.phone"),
    ("reference", ("engagements", 0, "name"), "engagements[0].name"),
    ("reference", ("locations", 0, "name"), "locations[0].name"),
    ("reference", ("customers", 0, "name"), "customers[0].name"),
]


@pytest.mark.parametrize(("route", "path", "field"), FREE_TEXT, ids=[f[2] for f in FREE_TEXT])
@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=[repr(c) for c in CONTROL_CHARACTERS])
def test_free_text_with_a_control_character_is_refused_naming_the_field(
    api: Api, route: str, path: tuple[Any, ...], field: str, control: str
) -> None:
    for text in (f"Evil{control}", f"{control}Evil", f"Ev{control}il"):
        body = with_path(ROUTES[route].valid, path, "+34 600" + text if field.endswith("phone") else text)
        assert fields(api(route, body)) == [field], repr(text)


UNDELIVERABLE = [
    "josé@example.com",
    "ana\x00@fabrikam.com",
    "ána@fabrikam.com",
    ".ana@fabrikam.com",
    "a..b@fabrikam.com",
]
ADDRESSES = [
    ("customers", ("customer_contact", "email"), "customer_contact.email"),
    ("customers", ("partner_contact", "email"), "partner_contact.email"),
]


@pytest.mark.parametrize(("route", "path", "field"), ADDRESSES, ids=[a[2] for a in ADDRESSES])
@pytest.mark.parametrize("address", UNDELIVERABLE)
def test_an_address_ses_cannot_deliver_to_is_refused_naming_the_field(
    api: Api, route: str, path: tuple[Any, ...], field: str, address: str
) -> None:
    assert fields(api(route, with_path(ROUTES[route].valid, path, address))) == [field]


# --- a refusal names the field, never echoes the value (SPEC §4): a body holds contacts' data ------------------

SECRET = "Quenby7Marrow"
ECHOES = [
    ("customers", ("customer_contact", "email"), f"{SECRET}@fabrikam", "customer_contact.email"),
    ("customers", ("customer_contact", "name"), f"{SECRET}\x07", "customer_contact.name"),
    ("customers", ("customer_contact", "phone"), f"+34 {SECRET}", "customer_contact.phone"),
    ("customers", ("customer_contact", "language"), SECRET, "customer_contact.language"),
    ("customers", ("partner_contact", "email"), f"{SECRET}@@contoso.com", "partner_contact.email"),
    ("customers", ("identifier", "type"), SECRET, "identifier.type"),
    ("customers", ("identifier", "value"), SECRET, "identifier.value"),
    ("customers", ("friendly_name",), SECRET * 10, "friendly_name"),
    ("customers", ("engagement_ids", 0), SECRET, "engagement_ids[0]"),
    ("customers", ("location_id",), SECRET, "location_id"),
    ("quotes", ("msx_opportunity_id",), SECRET * 10, "msx_opportunity_id"),
    ("reference", ("customers", 0, "country"), SECRET, "customers[0].country"),
    ("reference", ("customers", 0, "value"), SECRET, "customers[0].value"),
    ("reference", ("domains", 0, "domain"), f"{SECRET}..com", "domains[0].domain"),
    ("reference", ("engagements", 0, "payment_type"), SECRET, "engagements[0].payment_type"),
    ("reference", ("locations", 0, "enrolled_in_mci"), SECRET, "locations[0].enrolled_in_mci"),
]


@pytest.mark.parametrize(("route", "path", "value", "field"), ECHOES, ids=[e[3] for e in ECHOES])
def test_a_refused_value_is_named_by_its_field_and_never_echoed(
    api: Api, route: str, path: tuple[Any, ...], value: Any, field: str
) -> None:
    answer = api(route, with_path(ROUTES[route].valid, path, value))
    assert field in fields(answer)
    assert SECRET.lower() not in json.dumps(answer.body).lower()
