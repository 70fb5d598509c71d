"""The contract is code: docs/openapi.json is generated from the handlers and must not drift."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.cloudformation import load_template, routes
from local.openapi import (
    OPENAPI_PATH,
    SECURITY_SCHEME,
    TITLE,
    build_document,
    document_operations,
    project_version,
    render,
    template_operations,
)

REGENERATE = "run make openapi"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


def test_committed_document_is_up_to_date(document: dict[str, Any]) -> None:
    committed = OPENAPI_PATH.read_text(encoding="utf-8") if OPENAPI_PATH.exists() else ""
    assert committed == render(document), f"docs/openapi.json is out of date: {REGENERATE}"


def test_generation_is_stable(document: dict[str, Any]) -> None:
    text = render(document)
    assert text == render(build_document())
    assert text.endswith("}\n")


def test_every_template_route_is_documented(document: dict[str, Any]) -> None:
    missing = template_operations() - document_operations(document)
    assert not missing, f"routes in template.yaml that no function's resolver declares: {sorted(missing)}"


def test_every_documented_route_is_in_the_template(document: dict[str, Any]) -> None:
    extra = document_operations(document) - template_operations()
    assert not extra, f"routes a resolver declares but template.yaml does not deploy: {sorted(extra)}"


def test_authorized_routes_require_the_bearer_token(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for route in routes(load_template()):
        operation = document["paths"].get(route.path, {}).get(route.method.lower())
        if operation is None:
            continue  # reported by test_every_template_route_is_documented
        expected: list[dict[str, list[str]]] | None = [{SECURITY_SCHEME: []}] if route.authorized else None
        assert operation.get("security") == expected, f"{route.method} {route.path}"


def test_info(document: dict[str, Any]) -> None:
    assert document["info"]["title"] == TITLE == "MCI engagement customers"
    assert document["info"]["version"] == project_version()
    assert document["openapi"].startswith("3.")


IDEMPOTENT_OPERATIONS = {
    ("post", "/customers"),
    ("post", "/known-customers/{customer_id}/claims"),
    ("post", "/claims/{claim_id}/consent-requests"),
    ("post", "/claims/{claim_id}/submission"),
    ("post", "/claims/{claim_id}/cancellation"),
    ("post", "/ops/claims/{claim_id}/review"),
}
IDEMPOTENCY_KEY_REF = {"$ref": "#/components/parameters/IdempotencyKey"}


def test_idempotency_key_is_one_reusable_header_parameter(document: dict[str, Any]) -> None:
    parameter = document["components"]["parameters"]["IdempotencyKey"]
    assert parameter["name"] == "Idempotency-Key"
    assert parameter["in"] == "header"
    assert parameter["required"] is False
    assert parameter["schema"] == {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$"}
    assert "24 h" in parameter["description"]
    assert "422" in parameter["description"]


def test_every_idempotent_operation_declares_the_idempotency_key(document: dict[str, Any]) -> None:
    declaring = {
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "put", "post", "delete", "patch", "head")
        and IDEMPOTENCY_KEY_REF in operation.get("parameters", [])
    }
    assert declaring == IDEMPOTENT_OPERATIONS
    assert "x-idempotency-key" not in render(document)


def test_the_consent_decision_is_a_required_form_body(document: dict[str, Any]) -> None:
    body = document["paths"]["/consent/{token}"]["post"]["requestBody"]
    assert body["required"] is True
    assert list(body["content"]) == ["application/x-www-form-urlencoded"]
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["decision"]
    assert schema["properties"]["decision"]["enum"] == ["accept", "decline"]
    assert "x-request-body" not in render(document)


OPERATION_IDS = {
    ("get", "/engagements"): ("listEngagements", "partner"),
    ("get", "/locations"): ("listLocations", "partner"),
    ("post", "/eligibility-checks"): ("checkEligibility", "partner"),
    ("post", "/payment-quotes"): ("quotePayment", "partner"),
    ("post", "/customers"): ("addCustomer", "partner"),
    ("get", "/known-customers"): ("listKnownCustomers", "partner"),
    ("post", "/known-customers/{customer_id}/claims"): ("claimCustomer", "partner"),
    ("get", "/engagements/{engagement_id}/customers"): ("getCustomersPage", "partner"),
    ("get", "/claims/{claim_id}"): ("getClaim", "partner"),
    ("post", "/claims/{claim_id}/consent-requests"): ("requestConsent", "partner"),
    ("post", "/claims/{claim_id}/submission"): ("submitClaim", "partner"),
    ("post", "/claims/{claim_id}/cancellation"): ("cancelClaim", "partner"),
    ("get", "/referrals/{referral_id}"): ("getReferral", "partner"),
    ("get", "/attention-items"): ("listAttentionItems", "partner"),
    ("get", "/consent/{token}"): ("showConsentPage", "consent page"),
    ("head", "/consent/{token}"): ("headConsentPage", "consent page"),
    ("post", "/consent/{token}"): ("decideConsent", "consent page"),
    ("post", "/ops/reference-data"): ("loadReferenceData", "operations"),
    ("post", "/ops/claims/{claim_id}/review"): ("reviewClaim", "operations"),
}
TAGS = ("partner", "consent page", "operations")
CAMEL_CASE = re.compile(r"[a-z]+(?:[A-Z][a-z]+)*")


def test_every_operation_has_a_unique_camel_case_id_and_one_tag(document: dict[str, Any]) -> None:
    seen: dict[str, tuple[str, str]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            operation_id = operation.get("operationId", "")
            assert CAMEL_CASE.fullmatch(operation_id), f"{method.upper()} {path}: {operation_id!r}"
            assert operation_id not in seen, f"{operation_id} names both {seen[operation_id]} and {(method, path)}"
            seen[operation_id] = (method, path)
            assert len(operation.get("tags", [])) == 1, f"{method.upper()} {path}: {operation.get('tags')}"
            assert operation["tags"][0] in TAGS, f"{method.upper()} {path}: {operation['tags']}"


def test_operation_ids_and_tags_are_the_published_ones(document: dict[str, Any]) -> None:
    published = {
        (method, path): (operation.get("operationId"), (operation.get("tags") or [None])[0])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert published == OPERATION_IDS
    assert [tag["name"] for tag in document["tags"]] == list(TAGS)
    assert all(tag["description"] for tag in document["tags"])


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_gateway_answers_are_documented_with_their_real_bodies(document: dict[str, Any]) -> None:
    message = {"$ref": "#/components/schemas/GatewayMessage"}
    problem = {"$ref": "#/components/schemas/Problem"}
    assert document["components"]["schemas"]["GatewayMessage"]["required"] == ["message"]
    shared = document["components"]["responses"]
    assert shared["Unauthorized"]["content"] == {
        "application/json": {"schema": message},
        "application/problem+json": {"schema": problem},
    }
    assert shared["Forbidden"]["content"] == {
        "application/json": {"schema": message},
        "application/problem+json": {"schema": problem},
    }
    assert shared["TooManyRequests"]["content"] == {"application/json": {"schema": message}}
    for route in routes(load_template()):
        responses = document["paths"][route.path][route.method.lower()]["responses"]
        label = f"{route.method} {route.path}"
        assert responses["429"] == {"$ref": "#/components/responses/TooManyRequests"}, label
        if route.authorized:
            assert responses["401"] == {"$ref": "#/components/responses/Unauthorized"}, label
            assert responses["403"] == {"$ref": "#/components/responses/Forbidden"}, label
        else:
            assert "401" not in responses, label
            assert "403" not in responses, label


def test_every_json_post_declares_415_and_no_framework_422_remains(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in render(document)
    for method, path, operation in _operations(document):
        if method == "post" and not path.startswith("/consent/"):
            content = operation["responses"]["415"]["content"]
            assert list(content) == ["application/problem+json"], f"POST {path}"
        for status, response in operation["responses"].items():
            if status.startswith("4") and "content" in response and not path.startswith("/consent/"):
                assert set(response["content"]) <= {"application/problem+json", "application/json"}, (path, status)
                if status not in ("401", "403", "429"):
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)


@pytest.mark.parametrize("key", ["a", "demo-1", "x" * 255, "x" * 256, "", "with space", "é", "tab\there", "~!{}"])
def test_the_documented_key_pattern_is_the_rule_the_service_applies(key: str) -> None:
    from mci.http.idempotency import _KEY, OPENAPI_PARAMETER

    documented = re.fullmatch(OPENAPI_PARAMETER["schema"]["pattern"].strip("^$"), key) is not None
    assert documented == (_KEY.fullmatch(key) is not None)
