"""Issue 14 item 1: the local identity provider signs browsers in with the OIDC authorization code flow
and PKCE (local/oidc.py), as the web app does on AWS against JwtIssuer: S256 only, the verifier must hash
to the challenge, a code is single use, and the access token is one the local authorizer accepts."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e

CLIENT = "mci-partner-web"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _send(stack: StackClient, method: str, path: str, form: Any = None) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed; ``form`` is urlencoded as the browser and oidc-client-ts send it."""
    connection = http.client.HTTPConnection(stack.url.removeprefix("http://"), timeout=10)
    body = urlencode(form, doseq=True) if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read().decode()
    return response.status, {name.lower(): value for name, value in response.getheaders()}, answer


def _authorization(stack: StackClient, verifier: str, **overrides: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": f"{stack.url}/app/",
        "scope": "openid",
        "state": secrets.token_hex(8),
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    } | overrides


def _code(stack: StackClient, verifier: str, roles: tuple[str, ...] = ("incentives_user",)) -> str:
    asked = _authorization(stack, verifier)
    status, headers, _ = _send(
        stack, "POST", "/_local/oauth2/authorize", {**asked, "partner": "p-contoso-partners", "role": list(roles)}
    )
    assert status == 303
    location = urlsplit(headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{stack.url}/app/"
    answer = parse_qs(location.query)
    assert answer["state"] == [asked["state"]]
    return answer["code"][0]


def _exchange(stack: StackClient, code: str, verifier: str) -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CLIENT,
        "redirect_uri": f"{stack.url}/app/",
        "code_verifier": verifier,
    }
    status, _, body = _send(stack, "POST", "/_local/oauth2/token", form)
    return status, json.loads(body)


def test_discovery_names_the_code_flow_endpoints_with_s256_only(local_stack: StackClient) -> None:
    document = local_stack.request("GET", "/_local/.well-known/openid-configuration").json()

    assert document["issuer"] == f"{local_stack.url}/_local"
    assert document["jwks_uri"] == f"{local_stack.url}/_local/.well-known/jwks.json"
    assert document["authorization_endpoint"] == f"{local_stack.url}/_local/oauth2/authorize"
    assert document["token_endpoint"] == f"{local_stack.url}/_local/oauth2/token"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]


def test_the_sign_in_page_lists_partners_and_roles_and_carries_the_request(local_stack: StackClient) -> None:
    asked = _authorization(local_stack, secrets.token_urlsafe(48))
    status, headers, page = _send(local_stack, "GET", f"/_local/oauth2/authorize?{urlencode(asked)}")

    assert status == 200
    assert "form-action 'self'" in headers["content-security-policy"]
    assert 'value="p-contoso-partners"' in page
    assert 'name="role" id="role-incentives_user"' in page
    assert f'name="state" value="{asked["state"]}"' in page


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"code_challenge_method": "plain"}, "S256"),
        ({"code_challenge_method": ""}, "S256"),
        ({"code_challenge": ""}, "code_challenge"),
        ({"client_id": "someone-else"}, "client_id"),
        ({"redirect_uri": "https://attacker.example/app/"}, "redirect_uri"),
        ({"response_type": "token"}, "response_type"),
        ({"response_type": ""}, "response_type"),
    ],
)
def test_authorization_requests_without_s256_pkce_or_for_another_client_are_refused(
    local_stack: StackClient, overrides: dict[str, str], why: str
) -> None:
    asked = _authorization(local_stack, secrets.token_urlsafe(48), **overrides)
    for method, path, form in (
        ("GET", f"/_local/oauth2/authorize?{urlencode(asked)}", None),
        ("POST", "/_local/oauth2/authorize", {**asked, "partner": "p-contoso-partners", "role": "incentives_user"}),
    ):
        status, headers, page = _send(local_stack, method, path, form)
        assert (status, "location" in headers) == (400, False), page
        assert why in page


def test_a_wrong_verifier_is_refused_and_spends_the_code(local_stack: StackClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(local_stack, verifier)

    status, refusal = _exchange(local_stack, code, secrets.token_urlsafe(48))
    assert (status, refusal["error"]) == (400, "invalid_grant")
    assert "code_verifier" in refusal["error_description"]
    status, again = _exchange(local_stack, code, verifier)
    assert (status, again["error"]) == (400, "invalid_grant")


def test_the_code_and_its_verifier_give_tokens_the_api_accepts_once(local_stack: StackClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(local_stack, verifier, ("incentives_user", "referral_admin"))

    status, tokens = _exchange(local_stack, code, verifier)
    assert status == 200, tokens
    assert tokens["token_type"] == "Bearer"
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", tokens["id_token"])
    engagements = local_stack.request("GET", "/engagements", token=tokens["access_token"])
    assert engagements.status == 200, engagements.text
    identity = local_stack.request("GET", "/engagements", token=tokens["id_token"])
    assert identity.status == 401  # the ID token is for the app (aud: the client), not for the API
    status, replay = _exchange(local_stack, code, verifier)
    assert (status, replay["error"]) == (400, "invalid_grant")
