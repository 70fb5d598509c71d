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
    ("post", "/ops/reference-data"),
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
    # the first media type, the one generators read, admits both bodies a 401 or 403 can have
    assert shared["Unauthorized"]["content"] == {
        "application/json": {"schema": {"oneOf": [message, problem]}},
        "application/problem+json": {"schema": problem},
    }
    assert shared["Forbidden"]["content"] == {
        "application/json": {"schema": {"oneOf": [message, problem]}},
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


def _schemas(document: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas


def test_one_schema_per_model_and_every_title_unique(document: dict[str, Any]) -> None:
    """Generators name models by title: two schemas with one title lose one (issue 18 item 1)."""
    schemas = _schemas(document)
    split = sorted(name for name in schemas if name.endswith(("-Input", "-Output")))
    assert not split, f"models whose request and response schemas differ: {split}"
    titles = [schema.get("title", name) for name, schema in schemas.items()]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)


def _subschemas(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            found.append((where, node))
        for key, value in node.items():
            found.extend(_subschemas(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_subschemas(value, f"{where}/{index}"))
    return found


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float),
    "integer": (int,),
    "string": (str,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def test_every_default_has_its_schemas_type(document: dict[str, Any]) -> None:
    """openapi-spec-validator refuses a number whose default is the text '0' (money is a JSON number)."""
    for where, schema in _subschemas(document, "#"):
        if "default" not in schema or schema["type"] not in _JSON_TYPES:
            continue
        default = schema["default"]
        assert isinstance(default, _JSON_TYPES[schema["type"]]), (where, default)
        assert schema["type"] == "boolean" or not isinstance(default, bool), (where, default)


def test_money_is_a_json_number_both_ways(document: dict[str, Any]) -> None:
    schemas = _schemas(document)
    referral = schemas["ReferralSettings"]["properties"]["min_deal_size_usd"]
    assert referral == {**referral, "type": "number", "default": 0}
    for name in ("hourly_rate_usd", "max_payment_usd", "max_opportunity_share"):
        assert schemas["PaymentRules"]["properties"][name]["type"] == "number", name
    assert "anyOf" not in schemas["QuoteResponse"]["properties"]["proposed_payment_usd"]


def _enum(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        schema = _schemas(document)[schema["$ref"].rsplit("/", 1)[-1]]
    values: list[str] = schema["enum"]
    return values


def test_closed_sets_are_enums(document: dict[str, Any]) -> None:
    """What the service sends from a closed set is an enum, so typed clients can switch on it (item 6)."""
    from mci.domain.customers_page import Action
    from mci.domain.eligibility import ReasonCode
    from mci.domain.identifiers import IdentifierType

    schemas = _schemas(document)
    item = schemas["PageItemView"]["properties"]
    assert _enum(document, item["kind"]) == ["claim", "known_customer"]
    assert _enum(document, item["actions"]["items"]) == [a.value for a in Action]
    assert _enum(document, schemas["KnownIdentifier"]["properties"]["type"]) == [t.value for t in IdentifierType]
    assert _enum(document, schemas["ReasonView"]["properties"]["code"]) == [c.value for c in ReasonCode]
    for model in ("CustomerContact", "ConsentEvidence"):
        assert _enum(document, schemas[model]["properties"]["language"]) == ["en", "es"], model


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = {ref.rsplit("/", 1)[-1]} if isinstance(ref, str) and ref.startswith("#/components/schemas/") else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def test_response_schemas_require_every_field_the_service_sends(document: dict[str, Any]) -> None:
    """Responses are models dumped whole (``dump``): every field is sent, null or not, so every field of a
    schema a response reaches is required; the problem document is the exception (``errors`` only on invalid
    input). Request schemas keep their defaults, under their own names (item 1: distinct titles)."""
    schemas = _schemas(document)
    reached: set[str] = set()
    todo = _refs([operation["responses"] for _, _, operation in _operations(document)])
    todo |= _refs(document["components"]["responses"])
    while todo:
        name = todo.pop()
        reached.add(name)
        todo |= _refs(schemas[name]) - reached
    assert {"ClaimView", "Engagement", "CustomerContact", "PageItemView", "ConsentRequests"} <= reached
    for name in sorted(reached - {"Problem"}):
        schema = schemas[name]
        assert set(schema.get("required", [])) == set(schema.get("properties", {})), name
        assert not name.endswith("Input") or name == "IdentifierInput", f"{name} is a request schema"
    assert "errors" not in schemas["Problem"]["required"]
    engagement = schemas["EngagementInput"]
    assert engagement["title"] == "EngagementInput"
    assert "consent_window_days" not in engagement["required"]
    assert schemas["Engagement"]["title"] == "Engagement"


def _problem_codes_in_the_code() -> dict[str, str]:
    """code -> where: every literal a problem's ``code`` is made from (``code=``, ``{"status":, "code": ...}``,
    the first argument of ``Conflict``/``RuleViolation``, the second of ``problem``) in shared/, functions/, local/."""
    import ast

    from local.openapi import ROOT

    found: dict[str, str] = {}
    for path in sorted(
        [*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py"), *ROOT.glob("local/*.py")]
    ):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                values += [keyword.value for keyword in node.keywords if keyword.arg == "code"]
                if name in ("Conflict", "RuleViolation") and node.args:
                    values.append(node.args[0])
                if name == "problem" and len(node.args) > 1:
                    values.append(node.args[1])
            elif isinstance(node, ast.Dict):  # a problem body written by hand (a field's problem has no status)
                keys = {k.value: v for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant)}
                values += [keys["code"]] if {"code", "status"} <= set(keys) else []
            for value in values:
                for constant in ast.walk(value):
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                        found.setdefault(constant.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_problem_codes_are_one_enum_of_every_code_the_service_sends(document: dict[str, Any]) -> None:
    """A typed client parses ``Problem.code`` into its enum: a code missing there would crash it."""
    from mci.domain.eligibility import ReasonCode
    from mci.http.schemas import ProblemCode

    documented = set(_enum(document, _schemas(document)["Problem"]["properties"]["code"]))
    assert documented == {code.value for code in ProblemCode}
    in_the_code = _problem_codes_in_the_code()
    assert {"validation_error", "invalid_state", "payload_too_large", "unauthorized"} <= set(in_the_code)
    field_codes = {"invalid"}  # FieldError's default: a field's code, never a problem's
    missing = {code: where for code, where in in_the_code.items() if code not in documented | field_codes}
    assert not missing, f"problem codes the service sends that ProblemCode lacks: {missing}"
    assert {reason.value for reason in ReasonCode} <= documented  # nomination refuses with the first reason


def test_problem_codes_list_each_eligibility_reason_once_from_the_domain() -> None:
    """One list: ProblemCode is the edge's own codes followed by the domain's ReasonCode, not a copy of it."""
    from mci.domain.eligibility import ReasonCode
    from mci.http.schemas import ProblemCode, ServiceCode

    assert not {code.value for code in ServiceCode} & {reason.value for reason in ReasonCode}
    assert [code.value for code in ProblemCode] == [*(c.value for c in ServiceCode), *(r.value for r in ReasonCode)]


def test_every_component_schema_is_used(document: dict[str, Any]) -> None:
    """Generators make a model of every schema: none that no operation reaches (``ResponseValidationError``)."""
    schemas = _schemas(document)
    reached: set[str] = set()
    todo = _refs(document["paths"]) | _refs(document["components"].get("responses", {}))
    todo |= _refs(document["components"].get("parameters", {}))
    while todo:
        name = todo.pop()
        reached.add(name)
        todo |= _refs(schemas[name]) - reached
    assert sorted(set(schemas) - reached) == []
