"""One resolver setup for every API function: validation from the models, errors as problem details."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.errors import DomainError
from mci.domain.principal import Principal
from mci.http.principal import principal_from_event
from mci.http.problems import from_domain_error, problem, validation_problem
from mci.observability import error_trace, logger, observed
from mci.settings import get_settings


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'identifier', 'value') -> 'identifier.value'; list indexes as [i]."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def new_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(DomainError)
    def _domain_error(error: DomainError) -> Response[str]:
        if error.status >= 500:
            logger.warning("dependency unavailable", extra={"code": error.code, "detail": error.detail})
        return from_domain_error(error)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[str]:
        errors = [
            {
                "field": "body" if e.get("type") == "json_invalid" else field_path(e.get("loc", ())),
                "message": str(e.get("msg", "is invalid")),
                "code": str(e.get("type", "invalid")),
            }
            for e in error.errors()
        ]
        return validation_problem(errors)

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return problem(404, "not_found", "Not found", "No such route")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        # The stack without the message, which may quote a contact's data (mci.observability.error_trace)
        logger.error(
            "unexpected error", extra={"exception_name": type(error).__name__, "exception": error_trace(error)}
        )
        return problem(500, "internal_error", "Internal error", "Something went wrong on our side.")

    return app


def principal(app: APIGatewayHttpResolver | APIGatewayHttpRouter) -> Principal:
    return principal_from_event(app.current_event.raw_event)


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body.encode()
    try:
        return base64.b64decode(body)
    except (binascii.Error, ValueError):
        return body.encode()


# What matters to nesting: escapes (inside strings), quotes and brackets; one linear pass over them.
_JSON_SYNTAX = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def nests_deeper_than(text: str, limit: int) -> bool:
    """True when JSON ``text`` opens more than ``limit`` arrays or objects inside one another.

    Counted before parsing: ``json.loads`` and the validation that follows recurse once per level, and a
    few kilobytes of brackets exhaust the interpreter's stack (a RecursionError, a 500). Brackets inside
    strings do not count."""
    depth = 0
    in_string = False
    for token in _JSON_SYNTAX.finditer(text):
        syntax = token.group()
        if syntax == '"':
            in_string = not in_string
        elif in_string or len(syntax) == 2:
            continue
        elif syntax in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lower case (RFC 9110: case-insensitive), without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def _early(response: Response[str]) -> dict[str, Any]:
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": response.headers.get("Content-Type", "application/problem+json")},
        "body": response.body,
    }


def handle(
    app: APIGatewayHttpResolver, event: dict[str, Any], context: LambdaContext, *, json_body: bool = True
) -> dict[str, Any]:
    """One API invocation, observed (mci.observability): every line carries the API request id as its
    correlation id, and the caller's ``partner_id`` and the path's ``claim_id`` when the request has them.

    Path parameters are used as API Gateway hands them on: it percent-decodes the path once before routing
    (``rawPath``, which the resolver reads them from, and ``pathParameters``), so no route decodes them again."""
    request = _mapping(event.get("requestContext"))
    claims = _mapping(_mapping(_mapping(request.get("authorizer")).get("jwt")).get("claims"))
    return observed(
        event,
        context,
        lambda: _handle(app, event, context, json_body=json_body),
        correlation_id=str(request.get("requestId") or "") or None,
        partner_id=claims.get("partner_id"),
        claim_id=_mapping(event.get("pathParameters")).get("claim_id"),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _handle(
    app: APIGatewayHttpResolver, event: dict[str, Any], context: LambdaContext, *, json_body: bool
) -> dict[str, Any]:
    """Refuse oversize bodies before parsing them, then (``json_body``: every route but the consent page's)
    bodies that are not UTF-8 JSON, and JSON that is not an object; then resolve."""
    body = event.get("body") or ""
    # base64 text is 4/3 of the bytes it carries: no need to decode to know the body is too large
    if len(body) > get_settings().max_body_bytes * 4 // 3 + 4:
        return _early(problem(413, "payload_too_large", "Payload too large", "The request body is too large."))
    raw = _body_bytes(event)
    if len(raw) > get_settings().max_body_bytes:
        return _early(problem(413, "payload_too_large", "Payload too large", "The request body is too large."))
    headers = event.get("headers") or {}
    content_type = str(headers.get("content-type", ""))
    if not json_body:
        return app.resolve(event, context)
    # Powertools parses a body as JSON when its Content-Type is absent or starts with application/json, and
    # raises (a 500 here) on anything else: refuse it first, as RFC 9110 says, with 415.
    media_type = _media_type(content_type)
    if raw and content_type.strip() and not media_type.startswith("application/json"):
        return _early(
            problem(415, "unsupported_media_type", "Unsupported media type", "Send the body as application/json.")
        )
    if content_type.strip():
        # Powertools compares the header case-sensitively: hand it the media type in lower case
        _, separator, parameters = content_type.partition(";")
        event = {**event, "headers": {**headers, "content-type": media_type + separator + parameters}}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _early(validation_problem([{"field": "body", "message": "must be UTF-8 text", "code": "json_invalid"}]))
    # Powertools hands the first element of a list to a non-list Body parameter: refuse arrays here
    if "json" in content_type.lower() and raw.lstrip()[:1] == b"[":
        return _early(validation_problem([{"field": "body", "message": "must be a JSON object", "code": "model_type"}]))
    depth = get_settings().max_body_depth
    if nests_deeper_than(text, depth):
        message = f"nests arrays and objects more than {depth} levels deep"
        return _early(validation_problem([{"field": "body", "message": message, "code": "json_too_deep"}]))
    return app.resolve(event, context)


def json_body(payload: Any) -> str:
    return json.dumps(payload, default=str)
