"""Swagger UI for the local stack, fully offline.

The assets come from aws-lambda-powertools, which ships swagger-ui's bundle and stylesheet for its own
``enable_swagger``; the page and its start-up script are served locally too, so no CDN is touched and
a strict Content-Security-Policy holds. The local stack serves them under ``/docs``, beside the document at
``/openapi.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from local.api_stack import ApiStack
from local.pages import security_headers
from local.server import LocalRequest, LocalResponse, LocalRouteHandler, local_route

DOCS_PATH = "/docs"
OPENAPI_JSON_PATH = "/openapi.json"

# Only our own origin: the page must work with no network, and this proves it does.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>MCI engagement customers - API (local)</title>
  <link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui">Loading...</div>
  <script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
  <script src="{DOCS_PATH}/swagger-initializer.js"></script>
</body>
</html>
"""

_INITIALIZER = f"""window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: "{OPENAPI_JSON_PATH}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    filter: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    persistAuthorization: true,
    tryItOutEnabled: true,
    validatorUrl: null
  }});
}};
"""


@dataclass(frozen=True)
class Asset:
    content_type: str
    body: bytes


def _powertools_assets_dir() -> Path:
    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent


@cache
def assets() -> dict[str, Asset]:
    """Path -> asset, for the page and everything it loads."""
    directory = _powertools_assets_dir()
    return {
        DOCS_PATH: Asset("text/html; charset=utf-8", _PAGE.encode()),
        f"{DOCS_PATH}/swagger-initializer.js": Asset("application/javascript; charset=utf-8", _INITIALIZER.encode()),
        f"{DOCS_PATH}/swagger-ui-bundle.js": Asset(
            "application/javascript; charset=utf-8", (directory / "swagger-ui-bundle.min.js").read_bytes()
        ),
        f"{DOCS_PATH}/swagger-ui.css": Asset(
            "text/css; charset=utf-8", (directory / "swagger-ui.min.css").read_bytes()
        ),
    }


# ---------------------------------------------------------------- routes


@local_route("GET", OPENAPI_JSON_PATH)
def openapi_json(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The OpenAPI document of the API."""
    return LocalResponse.json(200, stack.openapi())


def _asset_route(path: str) -> LocalRouteHandler:
    def serve(stack: ApiStack, request: LocalRequest) -> LocalResponse:
        asset = assets()[path]
        headers = [
            ("Content-Type", asset.content_type),
            ("Cache-Control", "no-cache"),
            *security_headers(CONTENT_SECURITY_POLICY),
        ]
        return LocalResponse(200, headers, asset.body)

    serve.__doc__ = "Swagger UI (offline)." if path == DOCS_PATH else "A Swagger UI asset."
    return serve


for _path in (
    DOCS_PATH,
    f"{DOCS_PATH}/swagger-initializer.js",
    f"{DOCS_PATH}/swagger-ui-bundle.js",
    f"{DOCS_PATH}/swagger-ui.css",
):
    local_route("GET", _path)(_asset_route(_path))
