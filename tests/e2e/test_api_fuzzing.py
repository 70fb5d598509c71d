"""API fuzzing (issue 6, item 2): schemathesis against the committed docs/openapi.json, on the local stack.

Every operation of the document, with a valid token carrying the role the operation needs (``caller_for``),
in schemathesis' coverage and fuzzing phases, positive and negative data, a fixed seed and at most
``MAX_EXAMPLES`` generated examples per operation. Every answer must:

- not be a 5xx (``not_a_server_error``);
- use a documented status, content type and body schema (``status_code_conformance``,
  ``content_type_conformance``, ``response_schema_conformance``);
- on a 4xx of the JSON API, be an RFC 9457 problem (``problem_details_on_4xx``); a consent page is the
  HTML page with ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` (``consent_pages``).

Path ids and body fields are drawn from real values part of the time (``flatmap_*`` hooks: partner A's
claim, referral, known customer and used consent link, the demo locations, engagements and customers),
so requests also reach the handlers' success paths and their 2xx bodies are checked against the schema.

Known bugs are listed in ``KNOWN_BUGS``: each has a reproducer below marked ``xfail(strict=True)`` (it
fails the suite once the bug is fixed, so the entry is removed), and the fuzz test does not send the
requests that trigger it, counting them in the summary line instead of failing every run on them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import CONTENT_TYPE_PROBES, coverage_scenario
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.stack import LocalStack
from tests.support.access import (
    FORM,
    INCENTIVES_USER,
    MCI_OPERATIONS,
    OPERATIONS,
    PROBLEM_FIELDS,
    PROBLEM_JSON,
    REFERRAL_ADMIN,
    World,
    build_world,
    problem_shape,
    running_stack,
    send,
    use_stack_environment,
)
from tests.support.reference import (
    AI,
    CONTOSO,
    CONTOSO_MADRID,
    CONTOSO_SEATTLE,
    FABRIKAM_TENANT,
    LEGACY,
    MIGRATE,
    NORTHWIND_DUBLIN,
    SECURITY,
)

pytestmark = pytest.mark.e2e

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
MAX_EXAMPLES = 50

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            # The token is the test's to give (valid, with the operation's role); the access matrix covers
            # missing and bad tokens. Without this, the coverage phase would also send requests without it.
            "with-security-parameters": False,
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {
            "coverage": {
                # Methods no route has must get a 4xx. TRACE and QUERY are left out: the local server
                # (http.server) answers methods it does not implement with 501 Not Implemented, as RFC 9110
                # allows; that is the emulation's answer, not the service's.
                "unexpected-methods": ["get", "put", "post", "delete", "options", "patch"],
            },
        },
    }
)
schema = schemathesis.openapi.from_path(OPENAPI_PATH, config=CONFIG)

# ---------------------------------------------------------------- known bugs

UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
NON_UTF8_BODY = "non_utf8_body"
CONSENT_PAGES_UNDOCUMENTED = "consent_pages_undocumented"
# Every bug fuzzing found is fixed; its reproducer below stays as a regression test.
KNOWN_BUGS: dict[str, str] = {}

# ---------------------------------------------------------------- callers and realistic values


def caller_for(path: str) -> tuple[str, list[str]]:
    """(partner, roles) of a token the operation accepts."""
    if path.startswith("/ops/"):
        return OPERATIONS, [MCI_OPERATIONS]
    if path.startswith("/referrals/"):
        return CONTOSO, [REFERRAL_ADMIN]
    return CONTOSO, [INCENTIVES_USER]


# Partner A's resources, filled by the ``world`` fixture before any example is drawn.
REAL_PATH_VALUES: dict[str, list[str]] = {"engagement_id": [MIGRATE, SECURITY, AI, LEGACY]}

IDENTIFIERS = [
    {"type": "domain", "value": "fabrikam.com"},
    {"type": "domain", "value": "wideworldimporters.com"},
    {"type": "tenant_id", "value": FABRIKAM_TENANT},
    {"type": "tpid", "value": "100200300"},
    {"type": "subscription_id", "value": "9a8b7c6d-0000-4000-8000-00000000000a"},
    {"type": "msx_opportunity_id", "value": "7-ABC123XYZ"},
]
ENGAGEMENTS = [MIGRATE, SECURITY, AI, LEGACY]
REAL_BODY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "location_id": st.sampled_from([CONTOSO_MADRID, CONTOSO_SEATTLE, NORTHWIND_DUBLIN]),
    "engagement_id": st.sampled_from(ENGAGEMENTS),
    "engagement_ids": st.lists(st.sampled_from(ENGAGEMENTS), min_size=1, max_size=3, unique=True),
    "identifier": st.sampled_from(IDENTIFIERS),
    "msx_opportunity_id": st.sampled_from(["7-ABC123XYZ", "7-SMALL0001"]),
    "hours": st.integers(min_value=10, max_value=200),
    "customer_email": st.sampled_from(["ana@fabrikam.com", "olivia@wideworldimporters.com"]),
    "deal_size_usd": st.sampled_from([5000, 25000, 60000]),
    "disclaimer_accepted": st.just(True),
}


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    """Each path id: the generated one, or one of partner A's real ones."""
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    choices = {
        name: st.sampled_from([value, *REAL_PATH_VALUES[name]])
        for name, value in path_parameters.items()
        if REAL_PATH_VALUES.get(name)
    }
    if not choices:
        return st.just(path_parameters)
    return st.fixed_dictionaries(choices).map(lambda drawn: {**path_parameters, **drawn})


@schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """Top-level body fields: the generated value, or a value of the demo data (valid requests succeed)."""
    if not isinstance(body, dict):
        return st.just(body)
    choices = {
        name: st.one_of(st.just(value), REAL_BODY_VALUES[name])
        for name, value in body.items()
        if name in REAL_BODY_VALUES
    }
    if not choices:
        return st.just(body)
    return st.fixed_dictionaries(choices).map(lambda drawn: {**body, **drawn})


# ---------------------------------------------------------------- checks


def _content_type(response: Any) -> str:
    value = response.headers.get("content-type") or [""]
    return str(value[0] if isinstance(value, list) else value).split(";")[0].strip().lower()


def _header(response: Any, name: str) -> str | None:
    value = response.headers.get(name)
    return str(value[0] if isinstance(value, list) else value) if value else None


def problem_details_on_4xx(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx of the JSON API is a problem: application/problem+json with type, title, status, detail, code.

    A method no route has gets API Gateway's own ``404 {"message": "Not Found"}`` instead; consent pages
    are HTML (``consent_pages``).
    """
    if not 400 <= response.status_code < 500 or case.path.startswith("/consent/"):
        return
    if case.method.upper() != case.operation.method.upper():
        assert (response.status_code, json.loads(response.content)) == (404, {"message": "Not Found"})
        return
    content_type = _content_type(response)
    assert content_type == PROBLEM_JSON, f"{response.status_code} with Content-Type {content_type!r}"
    body = json.loads(response.content)
    missing = [name for name in PROBLEM_FIELDS if name not in body]
    assert not missing, f"problem fields missing: {missing} in {body}"
    assert body["status"] == response.status_code, body


def consent_pages(ctx: Any, response: Any, case: Any) -> None:
    """The public consent pages: HTML, never cached, never referred, and never a JSON error."""
    if not case.path.startswith("/consent/") or case.method.upper() != case.operation.method.upper():
        return
    assert _content_type(response) == "text/html", _content_type(response)
    assert _header(response, "cache-control") == "no-store"
    assert _header(response, "referrer-policy") == "no-referrer"
    assert response.status_code in {200, 400, 404, 410, 503}, response.status_code


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    problem_details_on_4xx,
    consent_pages,
]
DOCUMENT_CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def checks_for(path: str) -> list[Any]:
    """Every check, except those a known documentation bug of the operation makes fail on every call."""
    if path.startswith("/consent/") and CONSENT_PAGES_UNDOCUMENTED in KNOWN_BUGS:
        return [check for check in CHECKS if check not in DOCUMENT_CHECKS]
    return CHECKS


def _json_body_operation(case: Any) -> bool:
    return case.operation.method.upper() == "POST" and not case.operation.path.startswith("/consent/")


def _wire_body(case: Any, base_url: str) -> bytes | None:
    kwargs = case.as_transport_kwargs(base_url=base_url)
    if "json" in kwargs:
        return None  # requests writes ASCII-escaped JSON
    data = kwargs.get("data")
    if isinstance(data, str):
        return data.encode("utf-8")
    return data if isinstance(data, bytes) else None


def known_bug_trigger(case: Any, base_url: str) -> str | None:
    """The KNOWN_BUGS entry this request would only reproduce, or None."""
    if not _json_body_operation(case) or case.method.upper() != case.operation.method.upper():
        return None
    if UNSUPPORTED_MEDIA_TYPE in KNOWN_BUGS and coverage_scenario(case) in CONTENT_TYPE_PROBES:
        return UNSUPPORTED_MEDIA_TYPE
    body = _wire_body(case, base_url)
    if NON_UTF8_BODY in KNOWN_BUGS and body is not None:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return NON_UTF8_BODY
    return None


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack() as running:
        yield running


@pytest.fixture(autouse=True)
def _stack_environment(stack: LocalStack, aws_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    use_stack_environment(stack, monkeypatch)


@pytest.fixture(scope="module")
def world(stack: LocalStack) -> Iterator[World]:
    built = build_world(stack)
    real = {
        "claim_id": [built.claim_id],
        "referral_id": [built.referral_id],
        "customer_id": [built.customer_id],
        "token": [built.used_consent_token],
    }
    REAL_PATH_VALUES.update(real)
    yield built
    for name in real:
        REAL_PATH_VALUES.pop(name, None)


@pytest.fixture(scope="module")
def fuzz_stats(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    """Requests sent and known-bug triggers held back, reported in one line at the end of the module."""
    stats: Counter[str] = Counter()
    started = time.monotonic()
    yield stats
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    held = ", ".join(f"{stats[bug]} {bug}" for bug in KNOWN_BUGS if stats[bug]) or "none"
    answers = ", ".join(f"{stats[kind]} {kind}" for kind in ("2xx", "3xx", "4xx", "5xx") if stats[kind])
    line = (
        f"API fuzzing: {stats['sent']} requests over {stats['operations']} operations "
        f"({MAX_EXAMPLES} generated examples max per operation, plus the coverage phase) "
        f"in {time.monotonic() - started:.0f}s, answered {answers}; known-bug triggers held back: {held}"
    )
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(line)


# ---------------------------------------------------------------- the fuzz test


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_api(case: Any, stack: LocalStack, world: World, fuzz_stats: Counter[str]) -> None:
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if label not in fuzz_stats:
        fuzz_stats["operations"] += 1
        fuzz_stats[label] = 0
    bug = known_bug_trigger(case, stack.url)
    if bug is not None:
        fuzz_stats[bug] += 1  # reproduced by the strict xfail test of the bug below
        return
    partner, roles = caller_for(case.operation.path)
    token = stack.tokens.issue(partner, roles)
    fuzz_stats["sent"] += 1
    fuzz_stats[label] += 1
    response = case.call_and_validate(
        base_url=stack.url,
        headers={"Authorization": f"Bearer {token}"},
        checks=checks_for(case.operation.path),
    )
    fuzz_stats[f"{response.status_code // 100}xx"] += 1


# ---------------------------------------------------------------- reproducers of the known bugs


def _json_body_operations() -> list[tuple[str, str]]:
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "application/json" in (operation.get("requestBody") or {}).get("content", {})
    )


def _concrete(path: str, world: World) -> str:
    return (
        path.replace("{claim_id}", world.claim_id)
        .replace("{customer_id}", world.customer_id)
        .replace("{referral_id}", world.referral_id)
    )


def _client_errors_only(answers: dict[str, Any]) -> list[str]:
    return [f"{what}: {answer.status} {answer.text[:160]}" for what, answer in answers.items() if answer.status >= 500]


def test_an_unsupported_media_type_is_a_client_error(stack: LocalStack, world: World) -> None:
    """Reproducer: ``curl -X POST $URL/customers -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/plain'
    -d '{}'`` answers 500 internal_error."""
    answers = {}
    for method, path in _json_body_operations():
        partner, roles = caller_for(path)
        token = stack.tokens.issue(partner, roles)
        for media_type in ("text/plain", "application/xml", "multipart/form-data", "APPLICATION/JSON"):
            answer = send(stack.url, method, _concrete(path, world), b"{}", token=token, content_type=media_type)
            answers[f"{method} {path} as {media_type}"] = answer
    assert _client_errors_only(answers) == []
    refused = {what: answer for what, answer in answers.items() if not what.endswith("APPLICATION/JSON")}
    shapes = {what: problem_shape(answer, 415) for what, answer in refused.items()}
    assert {what: shape for what, shape in shapes.items() if shape} == {}
    assert {answer.json()["code"] for answer in refused.values()} == {"unsupported_media_type"}


def test_a_body_that_is_not_utf8_is_a_client_error(stack: LocalStack, world: World) -> None:
    """Reproducer: ``printf '{"reason": "\\xff"}' | curl -X POST $URL/claims/$ID/cancellation -H 'Content-Type:
    application/json' -H "Authorization: Bearer $TOKEN" --data-binary @-``."""
    answers = {}
    for method, path in _json_body_operations():
        partner, roles = caller_for(path)
        token = stack.tokens.issue(partner, roles)
        answer = send(stack.url, method, _concrete(path, world), b'{"reason": "\xff"}', token=token)
        answers[f"{method} {path}"] = answer
    json_answers = dict(answers)
    answers["POST /consent/{token}"] = send(stack.url, "POST", "/consent/unknown", b"decision=\xff", content_type=FORM)
    assert _client_errors_only(answers) == []
    shapes = {what: problem_shape(answer, 422) for what, answer in json_answers.items()}
    assert {what: shape for what, shape in shapes.items() if shape} == {}
    expected = [{"field": "body", "message": "must be UTF-8 text", "code": "json_invalid"}]
    assert {what: answer.json()["errors"] for what, answer in json_answers.items()} == dict.fromkeys(
        json_answers, expected
    )


def test_a_deeply_nested_body_is_a_client_error(stack: LocalStack, world: World) -> None:
    """Reproducer (issue 12.1): ``python3 -c 'print("[" * 1000 + "]" * 1000)' | curl -X POST $URL/customers
    -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" --data-binary @-`` answers 500."""
    bodies = {"arrays": "[" * 1000 + "]" * 1000, "objects": '{"a":' * 1000 + "1" + "}" * 1000}
    answers = {}
    for method, path in _json_body_operations():
        partner, roles = caller_for(path)
        token = stack.tokens.issue(partner, roles)
        for shape, body in bodies.items():
            answers[f"{method} {path} {shape}"] = send(
                stack.url, method, _concrete(path, world), body.encode(), token=token
            )
    assert _client_errors_only(answers) == []
    shapes = {what: problem_shape(answer, 422) for what, answer in answers.items()}
    assert {what: shape for what, shape in shapes.items() if shape} == {}
    fields = {what: [e["field"] for e in answer.json()["errors"]] for what, answer in answers.items()}
    assert fields == {what: ["body"] for what in answers}


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_the_consent_pages_match_the_document(stack: LocalStack, world: World, method: str) -> None:
    """Reproducer: ``curl -i $URL/consent/unknown`` answers 404 text/html; the document lists 200 JSON and 422."""
    case = schema["/consent/{token}"][method].Case(path_parameters={"token": "unknown"})
    case.call_and_validate(base_url=stack.url, checks=DOCUMENT_CHECKS)
