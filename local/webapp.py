"""The partner web app (SPEC §7) on the local stack: the static files of ``web/`` under ``/app/``.

``/app/`` is ``web/index.html``; ``/app/config.json`` tells the app where the API is and how to sign in
(locally: same origin, ``"auth": "local"`` with the demo partners and roles for ``POST /_local/tokens``).
On AWS the same files come from S3 behind CloudFront, with a ``config.json`` written at deploy.
Every answer carries the app's headers: a strict CSP (scripts and styles from this origin only, no inline
code), no framing, no sniffing, no referrer.
"""

from __future__ import annotations

import json

from local.api_stack import DEMO_DATA_PATH, DEMO_PARTNER, ApiStack
from local.pages import security_headers
from local.server import LocalRequest, LocalResponse, local_route
from local.web_files import CONTENT_SECURITY_POLICY, CONTENT_TYPES, WEB_ROOT, web_file
from mci.domain.principal import Role

APP_PATH = "/app/"
# The local issuer's OIDC client for "auth": "oidc" (its endpoints: local/oidc.py).
CLIENT_ID = "mci-partner-web"
PARTNER_ROLES = (Role.INCENTIVES_USER.value, Role.INCENTIVES_ADMIN.value, Role.REFERRAL_ADMIN.value)
SECURITY_HEADERS = security_headers(CONTENT_SECURITY_POLICY)


def _answer(status: int, content_type: str, body: bytes, cache: str) -> LocalResponse:
    headers = [("Content-Type", content_type), ("Cache-Control", cache), *SECURITY_HEADERS]
    return LocalResponse(status, headers, body)


def _not_found() -> LocalResponse:
    return _answer(404, "text/plain; charset=utf-8", b"Not Found\n", "no-store")


def _demo_first(partner_id: str) -> tuple[bool, str]:
    return partner_id != DEMO_PARTNER, partner_id


def demo_partners(stack: ApiStack) -> list[str]:
    """The partners of the demo data, the demo partner first (none without demo data)."""
    demo = json.loads(DEMO_DATA_PATH.read_text(encoding="utf-8")) if stack.demo_data is not None else {}
    return sorted({str(location["partner_id"]) for location in demo.get("locations", [])}, key=_demo_first)


@local_route("GET", "/app")
def app_redirect(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The partner web app: to /app/."""
    return LocalResponse(308, [("Location", APP_PATH), *SECURITY_HEADERS])


@local_route("GET", APP_PATH)
@local_route("HEAD", APP_PATH)
def app_index(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The partner web app (web/index.html)."""
    return _answer(200, CONTENT_TYPES[".html"], (WEB_ROOT / "index.html").read_bytes(), "no-cache")


@local_route("GET", f"{APP_PATH}config.json")
@local_route("HEAD", f"{APP_PATH}config.json")
def app_config(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The web app's configuration: API base URL (same origin), issuer, local sign-in with demo partners."""
    config = {
        "apiUrl": f"http://{request.headers.get('host') or f'{stack.host}:{stack.port}'}",
        "issuer": stack.tokens.issuer,
        "clientId": CLIENT_ID,
        "scope": "openid",
        "auth": "local",
        "demo": {"partners": demo_partners(stack), "roles": list(PARTNER_ROLES)},
    }
    body = json.dumps(config, indent=2).encode() + b"\n"
    return _answer(200, CONTENT_TYPES[".json"], body, "no-cache")


def _static(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """A file of the partner web app (web/)."""
    path = web_file(request.path.removeprefix(APP_PATH))
    if path is None:
        return _not_found()
    return _answer(200, CONTENT_TYPES[path.suffix], path.read_bytes(), "no-cache")


for _depth in range(1, 4):
    _pattern = APP_PATH + "/".join(f"{{p{n}}}" for n in range(_depth))
    local_route("GET", _pattern)(_static)
    local_route("HEAD", _pattern)(_static)
