"""Issue 3 in a real browser: the customer's way from the email to a recorded consent, on a phone and a desktop.

Headless Chromium opens the local mailbox, the consent email, then its link; the page must be Spanish for a
Spanish contact, its two buttons must have accessible names, the keyboard must reach the accept button with
a visible focus ring, and no request may leave 127.0.0.1. Pressing Accept records the consent, which the
API then shows. Screenshots go to test-artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.stack import LocalStack
from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.browser

MIGRATE = "e-azure-migrate"
ACCEPT = "Doy mi consentimiento"
DECLINE = "No doy mi consentimiento"
EMAIL_LINK = "Revisar y responder a la solicitud"
CONFIRMATION = "Gracias: su consentimiento ha quedado registrado"


@dataclass(frozen=True)
class Viewport:
    name: str
    partner_id: str
    location_id: str
    options: dict[str, Any] = field(default_factory=dict)


# One partner each, so both runs can claim the same customer in one stack.
VIEWPORTS = [
    Viewport(
        "mobile",
        "p-northwind-consulting",
        "7654321",
        {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2},
    ),
    Viewport("desktop", "p-contoso-partners", "1234567", {"viewport": {"width": 1280, "height": 800}}),
]


@dataclass
class Traffic:
    """Every request the browser made, and those that were not for 127.0.0.1 (aborted, never sent)."""

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    csp_errors: list[str] = field(default_factory=list)

    def watch(self, context: Any) -> None:
        context.route("**/*", self._route)
        context.on("request", lambda request: self.requests.append(f"{request.method} {request.url}"))

    def watch_console(self, page: Any) -> None:
        def record(message: Any) -> None:
            if "Content Security Policy" in message.text:
                self.csp_errors.append(message.text)

        page.on("console", record)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


def _consent_requested(client: StackClient, viewport: Viewport) -> tuple[str, str, str]:
    """A Spanish-speaking customer added and asked for consent over HTTP: (token, claim id, customer email)."""
    token = client.token(viewport.partner_id, ["incentives_user"])
    customer_email = f"lucia.{viewport.name}.{uuid.uuid4().hex[:6]}@fabrikam.com"
    added = client.request(
        "POST",
        "/customers",
        {
            "friendly_name": f"Fabrikam ({viewport.name})",
            "location_id": viewport.location_id,
            "identifier": {"type": "domain", "value": "fabrikam.com"},
            "engagement_ids": [MIGRATE],
            "customer_contact": {"name": "Lucía Fernández", "email": customer_email, "language": "es"},
            "partner_contact": {"name": "Sam Lee", "email": "sam@example.com"},
        },
        token=token,
    )
    assert added.status == 201, added.text
    claim_id = added.json()["claims"][0]["claim_id"]
    requested = client.request(
        "POST",
        f"/claims/{claim_id}/consent-requests",
        {"deal_size_usd": 25000, "disclaimer_accepted": True},
        token=token,
    )
    assert requested.status == 200, requested.text
    return token, claim_id, customer_email


def _focus_ring(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => {
                const el = document.activeElement;
                const style = getComputedStyle(el);
                return {
                    tag: el.tagName, value: el.value || null, text: el.textContent,
                    focusVisible: el.matches(':focus-visible'),
                    outlineStyle: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth),
                };
            }"""
        )
    )


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=[v.name for v in VIEWPORTS])
def test_customer_consents_from_the_email(
    viewport: Viewport, stack: LocalStack, client: StackClient, new_context: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    token, claim_id, customer_email = _consent_requested(client, viewport)
    context = new_context(locale="es-ES", **viewport.options)
    traffic = Traffic()
    traffic.watch(context)
    page = context.new_page()
    traffic.watch_console(page)
    shot = f"{viewport.name}-{{}}.png"

    # The mailbox lists the email; its subject opens it as sent.
    page.goto(f"{stack.url}/_local/mailbox")
    expect(page.get_by_role("heading", name="Local mailbox")).to_be_visible()
    page.screenshot(path=artifacts / shot.format("1-mailbox"), full_page=True)
    row = page.get_by_role("row", name=customer_email)
    expect(row).to_have_count(1)
    row.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/_local/mailbox/\d+$"))
    expect(page.get_by_role("link", name=EMAIL_LINK)).to_be_visible()
    page.screenshot(path=artifacts / shot.format("2-email"), full_page=True)

    # The consent link opens the page, in Spanish.
    page.get_by_role("link", name=EMAIL_LINK).click()
    page.wait_for_url(re.compile(r"/consent/[A-Za-z0-9_-]+$"))
    consent_url = page.url
    assert page.locator("html").get_attribute("lang") == "es"
    expect(page.get_by_role("heading", level=1)).to_have_text("Solicitud de consentimiento")
    answer = page.get_by_role("group", name="Su respuesta")
    accept = answer.get_by_role("button", name=ACCEPT, exact=True)
    decline = answer.get_by_role("button", name=DECLINE, exact=True)
    expect(accept).to_be_visible()
    expect(decline).to_be_visible()
    page.screenshot(path=artifacts / shot.format("3-consent-page"), full_page=True)

    # The keyboard reaches Accept, and the focus shows.
    for _ in range(10):
        page.keyboard.press("Tab")
        if accept.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail(f"Tab never reached the accept button; focus ended on {_focus_ring(page)}")
    ring = _focus_ring(page)
    assert ring["focusVisible"], ring
    assert ring["outlineStyle"] != "none", ring
    assert ring["outlineWidth"] >= 2, ring
    page.screenshot(path=artifacts / shot.format("4-accept-focused"), full_page=True)

    # A real press (Enter on the focused button) posts the decision.
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(CONFIRMATION)
    assert page.locator("html").get_attribute("lang") == "es"
    page.screenshot(path=artifacts / shot.format("5-confirmation"), full_page=True)

    assert traffic.blocked == [], traffic.blocked
    assert traffic.requests, "no request was recorded"
    for request in traffic.requests:
        assert urlsplit(request.split(" ", 1)[1]).hostname == "127.0.0.1", request
    assert f"POST {consent_url}" in traffic.requests
    assert traffic.csp_errors == [], traffic.csp_errors

    # The API agrees, and the link is used up.
    claim = client.request("GET", f"/claims/{claim_id}", token=token)
    assert claim.status == 200, claim.text
    assert claim.json()["state"] == "consent_granted"
    assert claim.json()["submission_deadline"]
    assert client.request("GET", urlsplit(consent_url).path).status == 404
