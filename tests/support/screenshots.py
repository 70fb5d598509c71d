"""``python -m tests.support.screenshots`` (``make screenshots``): the walkthrough's PNGs in docs/web/.

Starts the local stack in this process on a free port (as the browser tier does), sets up demo state
through the API as the partner, the customer (the consent page) and operations would (claims in several
states, an ineligible known customer, a completed claim), drives headless Chromium through the real app
and saves one PNG per screen. Rerun it after changing the app; docs/web.md lists every image.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local.stack import LocalStack
from tests.browser.conftest import LAUNCH_ARGS
from tests.browser.test_web_app import MIGRATE, SECURITY, Setup, sign_in
from tests.e2e.conftest import StackClient

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "web"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1024, "height": 720}}
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
ENGAGEMENT = "Azure Migrate assessment"


def demo_state(setup: Setup) -> dict[str, str]:
    """Claims in different states for Contoso on Azure Migrate, plus an ineligible known customer."""
    setup.add("Fabrikam Retail")
    setup.add("Tailspin Toys")
    ready = setup.consented("Woodgrove Bank")
    setup.completed("Wide World Importers")
    enterprise = setup.new_customer(segment="ENT")  # known from a workshop, not eligible for Azure Migrate
    setup.consented("Litware Enterprise", engagement=SECURITY, domain=enterprise)
    return {"ready": ready, "draft": setup.add("Northwind Traders"), "domain": setup.new_customer()}


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium not found (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with LocalStack(port=0) as stack, sync_playwright() as driver:
        state = demo_state(Setup(stack, StackClient(stack.url)))
        browser = driver.chromium.launch(executable_path=chromium, headless=True, args=LAUNCH_ARGS)
        try:
            for tour in (english, spanish, phone):
                context = browser.new_context(**(PHONE if tour is phone else DESKTOP))
                try:
                    tour(context.new_page(), stack, state, _saver(tour.__name__))
                finally:
                    context.close()
        finally:
            browser.close()
    total = sum(path.stat().st_size for path in OUTPUT.glob("*.png"))
    print(f"{len(list(OUTPUT.glob('*.png')))} screenshots in {OUTPUT.relative_to(ROOT)}, {total / 1024:.0f} KB")
    return 0


def _saver(tour: str) -> Callable[[Any, str], None]:
    def save(page: Any, name: str) -> None:
        page.wait_for_load_state("networkidle")
        path = OUTPUT / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"  {tour}: {path.relative_to(ROOT)}")

    return save


def _heading(page: Any, name: str | re.Pattern[str]) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


def english(page: Any, stack: LocalStack, state: dict[str, str], save: Callable[[Any, str], None]) -> None:
    page.goto(f"{stack.url}/app/")
    _heading(page, "Sign in")
    save(page, "signin")
    sign_in(page, stack)
    save(page, "engagements")
    page.get_by_role("link", name=ENGAGEMENT).click()
    for tab in ("Eligible", "Ineligible", "Complete"):
        page.get_by_role("tab", name=tab, exact=True).click()
        page.get_by_role("tabpanel").get_by_role("row").first.wait_for()
        save(page, f"customers-{tab.lower()}")
    page.goto(f"{stack.url}/app/#/claims/{state['ready']}")
    _heading(page, "Woodgrove Bank")
    save(page, "claim-details")
    _add_customer(page, stack, state["domain"], save)
    page.goto(f"{stack.url}/app/#/claims/{state['draft']}/consent")
    _heading(page, re.compile("contact", re.IGNORECASE))
    save(page, "consent")


def _add_customer(page: Any, stack: LocalStack, domain: str, save: Callable[[Any, str], None]) -> None:
    def next_step(heading: str) -> None:
        page.get_by_role("button", name="Next", exact=True).click()
        _heading(page, heading)

    page.goto(f"{stack.url}/app/#/engagements/{MIGRATE}/add")
    _heading(page, "What friendly name do you want to give this claim?")
    page.get_by_label("Friendly name", exact=True).fill("Contoso Pharmaceuticals")
    save(page, "add-1-name")
    next_step("Which location is making the claim?")
    page.get_by_role("radio", name="Contoso Partners Madrid (1234567)").check()
    save(page, "add-2-location")
    next_step("How do you want to identify the customer?")
    page.locator("[name='add-identifier-type'][value='domain']").check()
    page.locator("#add-identifier-value").fill(domain)
    save(page, "add-3-identifier")
    next_step("Which engagements do you want to add the customer to?")
    save(page, "add-4-eligibility")
    next_step("Who are the contacts for this claim?")
    page.locator("#add-customer-name").fill("Lucía Fernández")
    page.locator("#add-customer-email").fill(f"lucia@{domain}")
    page.locator("#add-partner-name").fill("Sam Lee")
    page.locator("#add-partner-email").fill("sam@contoso-partners.com")
    save(page, "add-5-contacts")
    next_step("Check your answers before adding the customer")
    save(page, "add-6-review")
    page.get_by_role("button", name="Add customer", exact=True).click()
    _heading(page, "Customer added")
    save(page, "add-7-confirmation")


def spanish(page: Any, stack: LocalStack, state: dict[str, str], save: Callable[[Any, str], None]) -> None:
    sign_in(page, stack, "es")
    page.get_by_role("link", name=ENGAGEMENT).click()
    page.get_by_role("tabpanel").get_by_role("row").first.wait_for()
    save(page, "es-customers-eligible")
    page.goto(f"{stack.url}/app/#/claims/{state['ready']}")
    _heading(page, "Woodgrove Bank")
    save(page, "es-claim-details")


def phone(page: Any, stack: LocalStack, state: dict[str, str], save: Callable[[Any, str], None]) -> None:
    sign_in(page, stack)
    page.get_by_role("link", name=ENGAGEMENT).click()
    page.get_by_role("tabpanel").get_by_role("row").first.wait_for()
    save(page, "phone-customers-eligible")


if __name__ == "__main__":
    sys.exit(main())
