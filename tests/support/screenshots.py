"""``python -m tests.support.screenshots`` (``make screenshots``): the walkthrough's PNGs in docs/web/.

Starts the local stack in this process on a free port (as the browser tier does), sets up demo state
through the API as the partner, the customer (the consent page) and operations would (claims in several
states, an ineligible known customer, a completed claim), drives headless Chromium through the real app
and saves one PNG per screen. Rerun it after changing the app; docs/web.md lists every image.

The images are repeatable: run twice on one machine, the same bytes, so git shows only the screens that
changed. Everything that varied per run is pinned: the demo customers' tenants and domains (uuid5 of a
fixed name, not uuid4), the service clock (every write at a whole minute of WALKTHROUGH_START) and the
browser's (``page.clock``: days left, next resend), the caret and any animation (``caret="hide"``,
``animations="disabled"``). Claim ids are the service's random uuid4: each one the pages show is written as
a stand-in before the shot, the same for a claim on every screen (uuid5 of the order in which the tour first
met it). Fonts are the machine's: another machine's may render other pixels.
"""

from __future__ import annotations

import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
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
WALKTHROUGH = "https://mci.example/walkthrough"  # the namespace of the stand-in ids
WALKTHROUGH_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # "now" in every image
# The claim ids <main> shows, in order of first sight: uuid4 (the walkthrough's tenants are uuid5).
CLAIM_IDS = """() => {
  const pattern = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g;
  const walker = document.createTreeWalker(document.getElementById("main"), NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const id of node.nodeValue.match(pattern) || []) if (!found.includes(id)) found.push(id);
  }
  return found;
}"""
# Every text node of <main> holding a claim id gets the id's stand-in instead.
REWRITE = """(standIns) => {
  const walker = document.createTreeWalker(document.getElementById("main"), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const [id, standIn] of Object.entries(standIns)) node.nodeValue = node.nodeValue.replaceAll(id, standIn);
  }
}"""


class WalkthroughClock:
    """The service clock and the browser's, pinned: each write through the API one whole minute later."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.minutes = count()
        self.now = WALKTHROUGH_START

    def tick(self) -> None:
        """The next whole minute, from now until the next tick (a write takes well under a minute)."""
        self.now = WALKTHROUGH_START + timedelta(minutes=next(self.minutes))
        self.stack.clock.offset = self.now - datetime.now(UTC)

    def pin_browser(self, page: Any) -> None:
        page.clock.set_fixed_time(self.now)


class PinnedSetup(Setup):
    """Setup whose every call happens at the walkthrough clock's next minute."""

    clock: WalkthroughClock

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        self.clock.tick()
        return super().call(method, path, body, token)


def _tenants() -> Iterator[str]:
    for n in count(1):
        yield str(uuid.uuid5(uuid.NAMESPACE_URL, f"{WALKTHROUGH}/customer/{n}"))


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
        clock = WalkthroughClock(stack)
        tenants = _tenants()
        setup = PinnedSetup(stack, StackClient(stack.url), new_tenant=lambda: next(tenants))
        setup.clock = clock
        state = demo_state(setup)
        clock.tick()
        browser = driver.chromium.launch(executable_path=chromium, headless=True, args=LAUNCH_ARGS)
        stand_ins: dict[str, str] = {}
        try:
            for tour in (english, spanish, phone):
                context = browser.new_context(**(PHONE if tour is phone else DESKTOP))
                try:
                    page = context.new_page()
                    clock.pin_browser(page)
                    tour(page, stack, state, _saver(tour.__name__, stand_ins), clock)
                finally:
                    context.close()
        finally:
            browser.close()
    total = sum(path.stat().st_size for path in OUTPUT.glob("*.png"))
    print(f"{len(list(OUTPUT.glob('*.png')))} screenshots in {OUTPUT.relative_to(ROOT)}, {total / 1024:.0f} KB")
    return 0


def _saver(tour: str, stand_ins: dict[str, str]) -> Callable[[Any, str], None]:
    def save(page: Any, name: str) -> None:
        page.wait_for_load_state("networkidle")
        page.evaluate("document.fonts.ready")
        for claim_id in page.evaluate(CLAIM_IDS):
            stand_ins.setdefault(claim_id, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{WALKTHROUGH}/claim/{len(stand_ins)}")))
        page.evaluate(REWRITE, stand_ins)
        path = OUTPUT / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, caret="hide", animations="disabled")
        print(f"  {tour}: {path.relative_to(ROOT)}")

    return save


def _heading(page: Any, name: str | re.Pattern[str]) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


def english(
    page: Any, stack: LocalStack, state: dict[str, str], save: Callable[[Any, str], None], clock: WalkthroughClock
) -> None:
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
    _add_customer(page, stack, state["domain"], save, clock)
    page.goto(f"{stack.url}/app/#/claims/{state['draft']}/consent")
    _heading(page, re.compile("contact", re.IGNORECASE))
    save(page, "consent")


def _add_customer(
    page: Any, stack: LocalStack, domain: str, save: Callable[[Any, str], None], clock: WalkthroughClock
) -> None:
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
    page.get_by_role("group", name="Customer identifier type").get_by_role("radio", name="Domain").check()
    page.get_by_label("Customer identifier", exact=True).fill(domain)
    save(page, "add-3-identifier")
    next_step("Which engagements do you want to add the customer to?")
    save(page, "add-4-eligibility")
    next_step("Who are the contacts for this claim?")
    customer = page.get_by_role("group", name="Customer contact")
    customer.get_by_label("Full name", exact=True).fill("Lucía Fernández")
    customer.get_by_label("Email address", exact=True).fill(f"lucia@{domain}")
    partner = page.get_by_role("group", name="Your organisation's contact")
    partner.get_by_label("Full name", exact=True).fill("Sam Lee")
    partner.get_by_label("Email address", exact=True).fill("sam@contoso-partners.com")
    save(page, "add-5-contacts")
    next_step("Check your answers before adding the customer")
    save(page, "add-6-review")
    clock.tick()
    page.get_by_role("button", name="Add customer", exact=True).click()
    _heading(page, "Customer added")
    save(page, "add-7-confirmation")


def spanish(
    page: Any, stack: LocalStack, state: dict[str, str], save: Callable[[Any, str], None], clock: WalkthroughClock
) -> None:
    sign_in(page, stack, "es")
    page.get_by_role("link", name=ENGAGEMENT).click()
    page.get_by_role("tabpanel").get_by_role("row").first.wait_for()
    save(page, "es-customers-eligible")
    page.goto(f"{stack.url}/app/#/claims/{state['ready']}")
    _heading(page, "Woodgrove Bank")
    save(page, "es-claim-details")


def phone(
    page: Any, stack: LocalStack, state: dict[str, str], save: Callable[[Any, str], None], clock: WalkthroughClock
) -> None:
    sign_in(page, stack)
    page.get_by_role("link", name=ENGAGEMENT).click()
    page.get_by_role("tabpanel").get_by_role("row").first.wait_for()
    save(page, "phone-customers-eligible")


if __name__ == "__main__":
    sys.exit(main())
