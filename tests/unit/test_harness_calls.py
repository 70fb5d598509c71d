"""The test harness: requests routed to handlers by template.yaml, and one Answer for every way of calling."""

from __future__ import annotations

import base64
import json

import pytest

from local.answers import Answer
from local.handler_calls import NoSuchRoute, route_handler, template_route
from tests.support.api import Caller


@pytest.mark.parametrize(
    ("method", "path", "function", "route_key", "parameters"),
    [
        ("POST", "/customers", "AddCustomerFunction", "POST /customers", {}),
        ("GET", "/known-customers", "ReadsFunction", "GET /known-customers", {}),
        (
            "POST",
            "/known-customers/c%3A1/claims",
            "ClaimCustomerFunction",
            "POST /known-customers/{customer_id}/claims",
            {"customer_id": "c:1"},
        ),
        ("HEAD", "/consent/tok-1", "ConsentPageFunction", "HEAD /consent/{token}", {"token": "tok-1"}),
        (
            "post",
            "/ops/claims/x/review",
            "ReviewClaimFunction",
            "POST /ops/claims/{claim_id}/review",
            {"claim_id": "x"},
        ),
    ],
)
def test_the_template_names_the_function_the_route_key_and_the_path_parameters(
    method: str, path: str, function: str, route_key: str, parameters: dict[str, str]
) -> None:
    route, found = template_route(method, path)
    assert (route.route.function, route.route_key, found) == (function, route_key, parameters)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/customers"),
        ("POST", "/nowhere"),
        ("GET", "/claims/a/b"),
        ("POST", "/known-customers/c%2F1/claims"),  # API Gateway decodes the path first: %2F splits the segment
    ],
)
def test_a_request_the_template_does_not_route_is_refused_loudly(method: str, path: str) -> None:
    with pytest.raises(NoSuchRoute, match=f"no route of template.yaml serves {method} {path}"):
        template_route(method, path)
    with pytest.raises(NoSuchRoute):
        Caller("p-1", ["incentives_user"], context=None).request(method, path)


def test_the_route_handler_is_the_functions_lambda_handler() -> None:
    import functions.reads.app as reads

    route, _ = template_route("GET", "/claims/c-1")
    assert route_handler(route.route) is reads.lambda_handler


def test_a_lambda_result_is_read_as_the_api_answers_it() -> None:
    problem = {"code": "not_found", "status": 404}
    raw = {
        "statusCode": 404,
        "headers": {"Content-Type": "application/problem+json"},
        "body": base64.b64encode(json.dumps(problem).encode()).decode(),
        "isBase64Encoded": True,
    }
    answer = Answer.of_result(raw)
    assert (answer.status, answer.body, answer.code, answer.raw) == (404, problem, "not_found", raw)
    assert (answer.content_type, answer.json()) == ("application/problem+json", problem)
    assert answer.headers == {"content-type": "application/problem+json"}


def test_a_text_answer_keeps_its_text_and_a_result_that_is_no_answer_is_its_own_body() -> None:
    page = Answer.of_result({"statusCode": 200, "headers": {"content-type": "text/html; charset=utf-8"}, "body": "<p>"})
    assert (page.body, page.text, page.code, page.content_type) == ("<p>", "<p>", None, "text/html")
    report = {"expired": 2}
    assert Answer.of_result(report) == Answer(200, {}, "", report, report)


def test_a_handler_that_says_json_and_sends_none_fails_the_test() -> None:
    with pytest.raises(ValueError, match="Expecting"):
        Answer.of_result({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{no"})


def test_an_http_answer_keeps_what_came_over_the_wire() -> None:
    answer = Answer.of_http(403, [("Content-Type", "application/json")], b'{"message": "Forbidden"}')
    assert (answer.status, answer.body, answer.json(), answer.raw) == (403, {"message": "Forbidden"}, answer.body, None)
    broken = Answer.of_http(502, [("Content-Type", "application/json")], b"\xffnot json")
    assert (broken.body, broken.text) == ("\ufffdnot json", "\ufffdnot json")
