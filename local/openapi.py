"""One OpenAPI document for the whole API, merged from every function's Powertools resolver.

Each ``functions/<name>/app.py`` owns an ``APIGatewayHttpResolver`` whose models drive validation;
their routes are gathered into one resolver and its schema generated once. Routes the template puts
behind the JWT authorizer get the bearer security requirement.

    PYTHONPATH=shared python -m local.openapi            # write docs/openapi.json (or: make openapi)
    PYTHONPATH=shared python -m local.openapi --check    # exit 1 when docs/openapi.json is out of date
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.cloudformation import Route, load_template, routes

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
OPENAPI_PATH = ROOT / "docs" / "openapi.json"
TITLE = "MCI engagement customers"
DESCRIPTION = (
    "Customers flow of MCI engagements: partners browse engagements, check eligibility, quote "
    "variable payments and add customers; programme operations load reference data. Errors are "
    "RFC 9457 problem details (`application/problem+json`) with a `code`. Every mutating request "
    "accepts an `Idempotency-Key` header."
)
SECURITY_SCHEME = "PartnerJwt"
SECURITY_SCHEMES = {
    SECURITY_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "A partner JWT verified by the API Gateway HTTP API JWT authorizer (issuer and audience "
            "of the stage). The `partner_id` claim names the caller's partner and `roles` its roles."
        ),
    }
}
IDEMPOTENCY_KEY = "IdempotencyKey"
# What API Gateway itself answers, before any function runs: a JSON ``{"message": ...}``, not a problem.
GATEWAY_MESSAGE = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string", "examples": ["Unauthorized", "Forbidden", "Too Many Requests"]}},
    "title": "GatewayMessage",
}
_MESSAGE = {"schema": {"$ref": "#/components/schemas/GatewayMessage"}}
_PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}
# A 401 or 403 is the authorizer's message or the service's problem. Generators that read only a response's first
# media type (openapi-python-client) parse application/json: there it is either, told apart by required fields.
_MESSAGE_OR_PROBLEM = {
    "schema": {"oneOf": [{"$ref": "#/components/schemas/GatewayMessage"}, {"$ref": "#/components/schemas/Problem"}]}
}
GATEWAY_RESPONSES: dict[str, dict[str, Any]] = {
    "Unauthorized": {
        "description": (
            'No valid bearer token: the JWT authorizer\'s `{"message": "Unauthorized"}` (application/json), '
            "or a problem when a verified token names no partner"
        ),
        "content": {"application/json": _MESSAGE_OR_PROBLEM, "application/problem+json": _PROBLEM},
    },
    "Forbidden": {
        "description": (
            'The token lacks the route\'s scope: the authorizer\'s `{"message": "Forbidden"}` '
            "(application/json); or the caller lacks the role: a problem"
        ),
        "content": {"application/json": _MESSAGE_OR_PROBLEM, "application/problem+json": _PROBLEM},
    },
    "TooManyRequests": {
        "description": 'Throttled by the stage or route limits: `{"message": "Too Many Requests"}`; retry later',
        "content": {"application/json": _MESSAGE},
    },
}
_FRAMEWORK_422 = "#/components/schemas/HTTPValidationError"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class OpenAPIMergeError(ValueError):
    """Two functions serve the same route."""


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        return str(tomllib.load(stream)["project"]["version"])


def function_modules() -> list[str]:
    """Every ``functions.<name>.app`` module, sorted, so the document is the same on every machine."""
    return [
        f"functions.{app.parent.name}.app"
        for app in sorted(FUNCTIONS_DIR.glob("*/app.py"))
        if (app.parent / "__init__.py").exists()
    ]


def function_resolvers(modules: Sequence[str] | None = None) -> dict[str, APIGatewayHttpResolver]:
    """Module name -> its HTTP resolver ``app`` (modules without one, e.g. scheduled functions, skipped)."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    resolvers: dict[str, APIGatewayHttpResolver] = {}
    for name in modules if modules is not None else function_modules():
        resolver = getattr(importlib.import_module(name), "app", None)
        if isinstance(resolver, APIGatewayHttpResolver):
            resolvers[name] = resolver
    return resolvers


def combined_resolver(resolvers: Mapping[str, APIGatewayHttpResolver]) -> APIGatewayHttpResolver:
    """One resolver holding every function's routes, never invoked: only its schema is read.

    Generating the schema once over all routes (rather than merging per-function documents) lets
    pydantic name a model used both as input and as output consistently (``X-Input``/``X-Output``).
    """
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    combined = APIGatewayHttpResolver(enable_validation=True)
    owners: dict[tuple[str, str], str] = {}
    for module, resolver in resolvers.items():
        # Powertools keeps routes in these lists; no public API exposes them (pinned version 3.x).
        for route in [*resolver._static_routes, *resolver._dynamic_routes]:
            key = (route.method, route.openapi_path)
            if key in owners:
                raise OpenAPIMergeError(f"{key[0]} {key[1]} is served by both {owners[key]} and {module}")
            owners[key] = module
        combined._static_routes.extend(resolver._static_routes)
        combined._dynamic_routes.extend(resolver._dynamic_routes)
    return combined


def _secure(paths: dict[str, dict[str, Any]], template_routes: Sequence[Route]) -> None:
    authorized = {(route.method.lower(), route.path) for route in template_routes if route.authorized}
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method in _METHODS and (method, path) in authorized:
                operation["security"] = [{SECURITY_SCHEME: []}]


def _declare_idempotency_key(paths: dict[str, dict[str, Any]], components: dict[str, Any]) -> None:
    """Operations marked ``DECLARES_KEY`` refer to the one reusable ``Idempotency-Key`` parameter."""
    from mci.http.idempotency import KEY_MARKER, OPENAPI_PARAMETER

    reference = {"$ref": f"#/components/parameters/{IDEMPOTENCY_KEY}"}
    for operations in paths.values():
        for method, operation in operations.items():
            if method in _METHODS and operation.pop(KEY_MARKER, False):
                operation.setdefault("parameters", []).append(reference)
    components.setdefault("parameters", {})[IDEMPOTENCY_KEY] = OPENAPI_PARAMETER


def _gateway_answers(
    paths: dict[str, dict[str, Any]], template_routes: Sequence[Route], components: dict[str, Any]
) -> None:
    """Every route can be throttled (429); an authorized one refused by the authorizer (401, and 403 when it
    requires scopes). Powertools' default 422 (``HTTPValidationError``) cannot happen: the resolver answers
    invalid requests with a problem, and these routes have nothing to validate, so it is dropped (its schemas
    with it, by ``_drop_unused_schemas``)."""
    for route in template_routes:
        operation = paths.get(route.path, {}).get(route.method.lower())
        if operation is None:
            continue  # reported by the drift tests
        responses: dict[str, Any] = operation.setdefault("responses", {})
        for status, response in list(responses.items()):
            schemas = [media.get("schema", {}).get("$ref") for media in response.get("content", {}).values()]
            if _FRAMEWORK_422 in schemas:
                del responses[status]
        responses["429"] = {"$ref": "#/components/responses/TooManyRequests"}
        if route.authorized:
            responses["401"] = {"$ref": "#/components/responses/Unauthorized"}
            if route.scopes:
                responses["403"] = {"$ref": "#/components/responses/Forbidden"}
    components.setdefault("schemas", {})["GatewayMessage"] = GATEWAY_MESSAGE
    components["responses"] = GATEWAY_RESPONSES  # the framework's schemas, now unused, go with the others


def _declare_request_bodies(paths: dict[str, dict[str, Any]]) -> None:
    """A body a route declares by hand (``REQUEST_BODY``) becomes its ``requestBody``."""
    from mci.http.schemas import REQUEST_BODY

    for operations in paths.values():
        for method, operation in operations.items():
            if method in _METHODS and REQUEST_BODY in operation:
                operation["requestBody"] = operation.pop(REQUEST_BODY)


def _name_by_direction(document: dict[str, Any]) -> None:
    """A model whose request and response schemas differ (the response requires what it always sends) comes
    out of pydantic as ``X-Input`` and ``X-Output``, both titled ``X``: generators that name models by title
    keep one. The response schema becomes ``X`` and the request schema ``XInput``, each titled by its name."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    names = {name: name.removesuffix("-Output") for name in schemas if name.endswith("-Output")}
    names |= {name: name.removesuffix("-Input") + "Input" for name in schemas if name.endswith("-Input")}
    clashes = sorted(set(names.values()) & set(schemas))
    if clashes:
        raise OpenAPIMergeError(f"schemas already named {clashes}: rename the models")
    for old, new in names.items():
        schemas[new] = {**schemas.pop(old), "title": new}
    text = json.dumps(document)
    for old, new in names.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    document.clear()
    document.update(json.loads(text))


def _schema_refs(node: Any) -> set[str]:
    """Names of the component schemas ``node`` refers to directly."""
    prefix = "#/components/schemas/"
    return set(re.findall(rf'"\$ref": "{re.escape(prefix)}([^"]+)"', json.dumps(node)))


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    """Generators make a model of every schema: keep only those an operation reaches (Powertools adds its
    ``ResponseValidationError`` and ``ValidationError`` whatever the routes)."""
    components = document.get("components", {})
    schemas: dict[str, Any] = components.get("schemas", {})
    todo = _schema_refs([document.get("paths", {}), components.get("responses", {}), components.get("parameters", {})])
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        reached.add(name)
        todo |= _schema_refs(schemas.get(name, {})) - reached
    for name in set(schemas) - reached:
        del schemas[name]


def build_document(template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The API's OpenAPI document, from the code (models, routes) and template.yaml (authorization)."""
    template = load_template() if template is None else template
    from aws_lambda_powertools.event_handler.openapi.models import Tag

    from mci.http.schemas import TAGS

    resolver = combined_resolver(function_resolvers())
    tags: list[Tag | str] = [Tag(name=name, description=description) for name, description in TAGS.items()]
    document: dict[str, Any] = json.loads(
        resolver.get_openapi_json_schema(title=TITLE, version=project_version(), description=DESCRIPTION, tags=tags)
    )
    document.setdefault("paths", {})
    _secure(document["paths"], routes(template))
    components = document.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    _declare_idempotency_key(document["paths"], components)
    _declare_request_bodies(document["paths"])
    _gateway_answers(document["paths"], routes(template), components)
    _name_by_direction(document)
    _drop_unused_schemas(document)
    return document


def template_operations(template: Mapping[str, Any] | None = None) -> set[tuple[str, str]]:
    """(METHOD, path) of every HTTP API route of the template."""
    return {(route.method, route.path) for route in routes(template)}


def document_operations(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation of an OpenAPI document."""
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in _METHODS
    }


def render(document: Mapping[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file differs")
    parser.add_argument("--output", type=Path, default=OPENAPI_PATH, help="where the document lives")
    args = parser.parse_args(argv)
    text = render(build_document())
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is out of date: run make openapi", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
