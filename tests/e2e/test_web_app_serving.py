"""Issue 14: the local stack serves the partner web app (web/) under /app/, with its config and headers."""

from __future__ import annotations

import http.client

import pytest

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e


def _assert_app_headers(headers: dict[str, str]) -> None:
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_app_index_is_served_uncached_with_a_strict_policy(local_stack: StackClient) -> None:
    answer = local_stack.request("GET", "/app/")

    assert answer.status == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="js/main.js"></script>' in answer.text
    _assert_app_headers(answer.headers)


def test_app_without_slash_redirects(local_stack: StackClient) -> None:
    connection = http.client.HTTPConnection(local_stack.url.removeprefix("http://"), timeout=5)
    connection.request("GET", "/app")
    response = connection.getresponse()

    assert (response.status, response.getheader("Location")) == (308, "/app/")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/app/js/main.js", "text/javascript; charset=utf-8"),
        ("/app/js/views/customers.js", "text/javascript; charset=utf-8"),
        ("/app/css/app.css", "text/css; charset=utf-8"),
        ("/app/i18n/es.json", "application/json"),
    ],
)
def test_app_assets_have_their_content_types(local_stack: StackClient, path: str, content_type: str) -> None:
    answer = local_stack.request("GET", path)

    assert (answer.status, answer.headers["content-type"]) == (200, content_type)
    _assert_app_headers(answer.headers)


def test_app_config_points_at_the_same_origin_with_local_sign_in(local_stack: StackClient) -> None:
    config = local_stack.request("GET", "/app/config.json").json()

    assert config["apiUrl"] == local_stack.url
    assert config["auth"] == "local"
    assert config["issuer"] == f"{local_stack.url}/_local"
    assert config["clientId"] == "mci-partner-web"  # the local issuer's OIDC client (local/oidc.py)
    assert config["demo"]["partners"][0] == "p-contoso-partners"
    assert config["demo"]["roles"] == ["incentives_user", "incentives_admin", "referral_admin"]


@pytest.mark.parametrize(
    "path",
    [
        "/app/../local/server.py",
        "/app/%2e%2e/README.md",
        "/app/js/..%2f..%2flocal%2fserver.py",
        "/app/js/%2e%2e/%2e%2e/pyproject.toml",
        "/app/.hidden.js",
        "/app/js/missing.js",
        "/app/index.py",
        "/app/package.json",  # npm's files: the app loads only web/vendor/ (make web-vendor)
        "/app/package-lock.json",
        "/app/node_modules/jwt-decode/package.json",
        "/app/node_modules/oidc-client-ts/package.json",
        "/app/NODE_MODULES/jwt-decode/package.json",
    ],
)
def test_app_refuses_paths_outside_web_and_unknown_files(local_stack: StackClient, path: str) -> None:
    connection = http.client.HTTPConnection(local_stack.url.removeprefix("http://"), timeout=5)
    connection.request("GET", path)  # sent as written: no client-side normalisation of ".."
    response = connection.getresponse()
    body = response.read()

    assert response.status == 404, body
    assert b"Not Found" in body  # deeper than web/ has folders: the API's own 404
    assert b"[project]" not in body
