"""GET, HEAD and POST /consent/{token}: the customer's public consent page (rules 15-16). No authorizer."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.claims import Decision
from mci.domain.consent_decision import GONE, ConsentPage, PageStatus
from mci.domain.errors import DependencyUnavailable
from mci.http.consent_pages import HEADERS, busy_page, render
from mci.http.resolver import handle, new_resolver
from mci.http.schemas import CONSENT_PAGE, REQUEST_BODY
from mci.snapstart import on_snapshot
from mci.wiring import consent_decisions

app = new_resolver()
MAX_FORM_BYTES = 1024
_HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
PAGE_RESPONSES: dict[int, Any] = {
    200: {"description": "The consent page", "content": _HTML},
    404: {"description": "The one neutral page: an unknown, used or expired link", "content": _HTML},
}
DECISION_RESPONSES: dict[int, Any] = {
    **PAGE_RESPONSES,
    200: {"description": "The page confirming the decision", "content": _HTML},
    400: {"description": "No single valid decision: the page again", "content": _HTML},
    503: {"description": "Busy: retry after Retry-After seconds", "content": _HTML},
}

DECISION_FORM: dict[str, Any] = {
    REQUEST_BODY: {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["decision"],
                    "properties": {
                        "decision": {
                            "type": "string",
                            "enum": [d.value for d in Decision],
                            "description": "The customer's answer; exactly one (the page's two buttons send it)",
                        }
                    },
                }
            }
        },
    }
}


def _page(view: ConsentPage, *, head: bool = False, status: int | None = None) -> Response[str]:
    code = status or (404 if view.status is PageStatus.GONE else 200)
    return Response(status_code=code, headers=dict(HEADERS), body="" if head else render(view))


@app.get(
    "/consent/<token>",
    operation_id="showConsentPage",
    tags=[CONSENT_PAGE],
    summary="The consent page (public; reads only)",
    responses=PAGE_RESPONSES,
)
def show(token: str) -> Response[str]:
    return _page(consent_decisions().page(token))


@app.head(
    "/consent/<token>",
    operation_id="headConsentPage",
    tags=[CONSENT_PAGE],
    summary="The consent page headers (public; reads only)",
    responses=PAGE_RESPONSES,
)
def show_head(token: str) -> Response[str]:
    return _page(consent_decisions().page(token), head=True)


@app.post(
    "/consent/<token>",
    operation_id="decideConsent",
    tags=[CONSENT_PAGE],
    summary="The customer's decision: form field decision=accept|decline (public)",
    responses=DECISION_RESPONSES,
    openapi_extensions=DECISION_FORM,
)
def decide(token: str) -> Response[str]:
    try:
        body = app.current_event.decoded_body or ""
    except UnicodeDecodeError:
        body = ""  # not a form this page sent: answered like a missing decision
    fields = parse_qs(body[:MAX_FORM_BYTES]) if len(body) <= MAX_FORM_BYTES else {}
    values = fields.get("decision", [])
    if len(values) != 1 or values[0] not in {d.value for d in Decision}:
        view = consent_decisions().page(token)
        return _page(view, status=400 if view.status is PageStatus.OPEN else 404)
    try:
        request_id = app.current_event.request_context.request_id  # the correlation id, into the claim's history
        return _page(consent_decisions().decide(token, Decision(values[0]), request_id))
    except DependencyUnavailable as error:
        return _busy(error)


@app.not_found
def _unroutable(_: Exception) -> Response[str]:
    """A /consent/ path API Gateway routed here that Powertools' path pattern refuses: API Gateway hands the path on
    decoded, and a decoded backslash or control character is outside the pattern. No link the service issues looks
    like that (tokens are URL-safe base64): the one neutral page, as for any unknown link (rule 15)."""
    return _page(GONE, head=app.current_event.http_method == "HEAD")


def _busy(error: DependencyUnavailable) -> Response[str]:
    """The customer's answer was not recorded: the page says to press the button again, and when."""
    headers = {**HEADERS, "Retry-After": str(max(error.retry_after_seconds, 1))}
    return Response(status_code=503, headers=headers, body=busy_page())


on_snapshot(app, consent_decisions)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context, json_body=False)
