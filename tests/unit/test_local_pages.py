"""One chrome for the local stack's pages: the mailbox and the events feed share the stylesheet and layout;
every page (those, the web app, Swagger UI) carries the same security headers under its own policy."""

from __future__ import annotations

import base64
import hashlib

from local import pages, swagger, webapp


def test_a_page_carries_its_stylesheet_and_a_policy_that_allows_only_it() -> None:
    answer = pages.page(200, "A <title>", "<h1>Hello</h1>")
    headers = dict(answer.headers)
    body = answer.body.decode()
    digest = base64.b64encode(hashlib.sha256(pages.STYLE.encode()).digest()).decode()
    assert f"<style>{pages.STYLE}</style>" in body
    assert "<title>A &lt;title&gt;</title>" in body
    assert f"style-src 'sha256-{digest}'" in headers["Content-Security-Policy"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"


def test_every_page_gets_the_same_security_headers() -> None:
    expected = {"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"}
    for policy in (pages.PAGE_POLICY, webapp.CONTENT_SECURITY_POLICY, swagger.CONTENT_SECURITY_POLICY):
        headers = dict(pages.security_headers(policy))
        assert set(headers) == expected
        assert headers["Content-Security-Policy"] == policy
        assert (headers["X-Content-Type-Options"], headers["Referrer-Policy"], headers["X-Frame-Options"]) == (
            "nosniff",
            "no-referrer",
            "DENY",
        )
    assert pages.security_headers(webapp.CONTENT_SECURITY_POLICY) == webapp.SECURITY_HEADERS
