"""Swagger UI for the local stack, fully offline.

The assets come from aws-lambda-powertools, which ships swagger-ui's bundle and stylesheet for its own
``enable_swagger``; the page and its start-up script are served locally too, so no CDN is touched and
a strict Content-Security-Policy holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

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
