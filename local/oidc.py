"""The local identity provider's browser sign-in: the OpenID Connect authorization code flow with PKCE.

The partner web app signs in this way when its ``config.json`` says ``"auth": "oidc"``, as it does on AWS
against the issuer the HTTP API authorizer trusts (``JwtIssuer``). Here the issuer is the local one
(``local/tokens.py``), so the tokens it hands out are the ones the local authorizer verifies:

- ``GET /_local/oauth2/authorize``: a page to choose a demo partner and roles (no password: local only);
- ``POST /_local/oauth2/authorize``: the choice, answered ``303`` to ``redirect_uri?code=...&state=...``;
- ``POST /_local/oauth2/token``: the code and its PKCE verifier for an access token (as ``POST
  /_local/tokens`` issues, with ``client_id``) and an ID token (``aud`` the client);
- the issuer's discovery document names these endpoints.

One client (``CLIENT_ID``) whose one redirect URI is the app (``/app/``). PKCE is required and ``S256``
only: ``plain`` or no challenge is refused, and so is a verifier that does not hash to the challenge.
A code is single use, lives a minute, and is bound to its client, redirect URI and challenge.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

from local.server import LOCAL_ROUTES, BadRequest, LocalRequest, LocalResponse, local_route
from local.tokens import DEFAULT_EXPIRES_IN, scopes_for
from local.webapp import APP_PATH, CLIENT_ID, PARTNER_ROLES, demo_partners

if TYPE_CHECKING:
    from local.api_stack import ApiStack

DISCOVERY_PATH = "/_local/.well-known/openid-configuration"
AUTHORIZE_PATH = "/_local/oauth2/authorize"
TOKEN_PATH = "/_local/oauth2/token"
CODE_SECONDS = 60
PAGE_POLICY = "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
AUTHORIZE_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


class AuthorizationError(Exception):
    """An authorization or token request this provider refuses (OAuth 2.0 error code and description)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error


@dataclass(frozen=True)
class Grant:
    """What a code stands for until it is exchanged."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    partner_id: str
    roles: tuple[str, ...]
    expires_at: float


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class AuthorizationCodes:
    """Codes handed out and not yet exchanged; a code is single use and short lived."""

    def __init__(self, lifetime: float = CODE_SECONDS) -> None:
        self._lifetime = lifetime
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, request: Mapping[str, str], partner_id: str, roles: tuple[str, ...]) -> str:
        code = secrets.token_urlsafe(32)
        grant = Grant(
            client_id=request["client_id"],
            redirect_uri=request["redirect_uri"],
            code_challenge=request["code_challenge"],
            nonce=request.get("nonce", ""),
            partner_id=partner_id,
            roles=roles,
            expires_at=time.monotonic() + self._lifetime,
        )
        with self._lock:
            self._grants = {key: kept for key, kept in self._grants.items() if kept.expires_at > time.monotonic()}
            self._grants[code] = grant
        return code

    def redeem(self, code: str, client_id: str, redirect_uri: str, verifier: str) -> Grant:
        """The grant of ``code`` (now spent), or AuthorizationError ``invalid_grant``."""
        with self._lock:
            grant = self._grants.pop(code, None)
        if grant is None or grant.expires_at <= time.monotonic():
            raise AuthorizationError("invalid_grant", "unknown, used or expired code")
        if (grant.client_id, grant.redirect_uri) != (client_id, redirect_uri):
            raise AuthorizationError("invalid_grant", "the code was issued to another client or redirect_uri")
        if not secrets.compare_digest(s256(verifier), grant.code_challenge):
            raise AuthorizationError("invalid_grant", "code_verifier does not match the code_challenge")
        return grant


CODES = AuthorizationCodes()


def redirect_uri_of(stack: ApiStack) -> str:
    """The client's one registered redirect URI: the web app on this stack."""
    return f"{stack.url}{APP_PATH}"


def authorization_request(stack: ApiStack, parameters: Mapping[str, str]) -> dict[str, str]:
    """The checked parameters of an authorization request, or AuthorizationError."""
    if parameters.get("client_id") != CLIENT_ID:
        raise AuthorizationError("unauthorized_client", f"client_id must be {CLIENT_ID}")
    if parameters.get("redirect_uri") != redirect_uri_of(stack):
        raise AuthorizationError("invalid_request", f"redirect_uri must be {redirect_uri_of(stack)}")
    if parameters.get("response_type") != "code":
        raise AuthorizationError("unsupported_response_type", "response_type must be code")
    if parameters.get("code_challenge_method") != "S256":
        raise AuthorizationError("invalid_request", "PKCE is required: code_challenge_method must be S256")
    if len(parameters.get("code_challenge", "")) != 43:
        raise AuthorizationError("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)")
    return {name: parameters[name] for name in AUTHORIZE_PARAMETERS if name in parameters}


def _parameters(text: bytes | str, *, lists: tuple[str, ...] = ()) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Query or form parameters, each at most once as OAuth 2.0 asks (except those named in ``lists``)."""
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    parsed = parse_qs(raw, keep_blank_values=True)
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1 and name not in lists)
    if repeated:
        raise AuthorizationError("invalid_request", f"repeated parameter: {', '.join(repeated)}")
    single = {name: values[0] for name, values in parsed.items() if name not in lists}
    return single, {name: parsed.get(name, []) for name in lists}


def _page(status: int, body: str) -> LocalResponse:
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy", PAGE_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ]
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Local identity provider</title></head><body><main>{body}</main></body></html>"
    )
    return LocalResponse(status, headers, document.encode())


def _refused(error: AuthorizationError) -> LocalResponse:
    return _page(400, f"<h1>Sign-in refused</h1><p>{html.escape(error.error)}: {html.escape(str(error))}</p>")


def _choice(kind: str, name: str, value: str, label: str, checked: bool) -> str:
    field_id = html.escape(f"{name}-{value}")
    return (
        f'<div><input type="{kind}" name="{name}" id="{field_id}" value="{html.escape(value)}"'
        f'{" checked" if checked else ""}><label for="{field_id}">{html.escape(label)}</label></div>'
    )


@local_route("GET", AUTHORIZE_PATH)
def authorize_page(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """OIDC sign-in (authorization code with PKCE S256): choose a demo partner and roles."""
    try:
        checked = authorization_request(stack, _parameters(request.query)[0])
    except AuthorizationError as error:
        return _refused(error)
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">' for name, value in checked.items()
    )
    partners = "".join(_choice("radio", "partner", p, p, n == 0) for n, p in enumerate(demo_partners(stack)))
    roles = "".join(_choice("checkbox", "role", r, r, n == 0) for n, r in enumerate(PARTNER_ROLES))
    return _page(
        200,
        "<h1>Local identity provider</h1>"
        f"<p>Signing in to {html.escape(checked['client_id'])}. Choose who to be (local stack only).</p>"
        f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}'
        f"<fieldset><legend>Partner</legend>{partners}</fieldset>"
        f"<fieldset><legend>Roles</legend>{roles}</fieldset>"
        '<button type="submit">Continue</button></form>',
    )


@local_route("POST", AUTHORIZE_PATH)
def authorize(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """OIDC sign-in: the chosen partner and roles -> 303 to redirect_uri with code and state."""
    try:
        parameters, chosen = _parameters(request.body, lists=("role",))
        checked = authorization_request(stack, parameters)
    except AuthorizationError as error:
        return _refused(error)
    partner_id = parameters.get("partner", "")
    roles = tuple(chosen["role"])
    if partner_id not in demo_partners(stack) or not set(roles) <= set(PARTNER_ROLES):
        return _refused(AuthorizationError("access_denied", "choose a listed partner and roles"))
    code = CODES.issue(checked, partner_id, roles)
    answer = {"code": code, **({"state": checked["state"]} if "state" in checked else {})}
    return LocalResponse(
        303, [("Location", f"{checked['redirect_uri']}?{urlencode(answer)}"), ("Cache-Control", "no-store")]
    )


def _token_error(error: AuthorizationError) -> LocalResponse:
    body = {"error": error.error, "error_description": str(error)}
    return LocalResponse.json(400, body, [("Cache-Control", "no-store")])


@local_route("POST", TOKEN_PATH)
def token(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """OIDC token endpoint: an authorization code and its PKCE verifier -> access and ID tokens."""
    try:
        form = _parameters(request.body)[0]
        if form.get("grant_type") != "authorization_code":
            raise AuthorizationError("unsupported_grant_type", "grant_type must be authorization_code")
        missing = [name for name in ("code", "client_id", "redirect_uri", "code_verifier") if not form.get(name)]
        if missing:
            raise AuthorizationError("invalid_request", f"missing: {', '.join(missing)}")
        grant = CODES.redeem(form["code"], form["client_id"], form["redirect_uri"], form["code_verifier"])
    except AuthorizationError as error:
        return _token_error(error)
    access = stack.tokens.issue(grant.partner_id, grant.roles, extra_claims={"client_id": grant.client_id})
    identity = stack.tokens.issue(
        grant.partner_id,
        grant.roles,
        extra_claims={"aud": grant.client_id, "nonce": grant.nonce or None, "scope": None, "token_use": "id"},
    )
    scope = " ".join(["openid", *scopes_for(grant.roles)])
    body = {
        "access_token": access,
        "id_token": identity,
        "token_type": "Bearer",
        "expires_in": DEFAULT_EXPIRES_IN,
        "scope": scope,
    }
    return LocalResponse.json(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


_issuer_document = LOCAL_ROUTES["GET", DISCOVERY_PATH]


@local_route("GET", DISCOVERY_PATH)
def openid_configuration(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The local issuer's discovery document, with the authorization code flow's endpoints."""
    answer = _issuer_document(stack, request)
    document = json.loads(answer.body)
    if not isinstance(document, dict):
        raise BadRequest("the issuer's discovery document is not an object")
    document.update(
        {
            "authorization_endpoint": f"{stack.url}{AUTHORIZE_PATH}",
            "token_endpoint": f"{stack.url}{TOKEN_PATH}",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", *sorted(set(scopes_for(PARTNER_ROLES)))],
        }
    )
    return LocalResponse.json(answer.status, document)
