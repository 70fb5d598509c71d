"""Issue 14: the partner web app in a real browser, in English and Spanish, on a desktop and a phone.

Headless Chromium signs in on the local stack's app (/app/), lists the engagements, opens a Customers
page (ARIA tabs, paging, export), a claim's details, and submits or cancels a claim. State is set up over
HTTP as a partner, the customer (the consent page's POST) and operations would. axe-core checks every
screen for WCAG 2.1 A/AA violations. Controls are found by role and visible name, never by CSS class.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack
from tests.browser.conftest import slow_network
from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.browser

PARTNER, LOCATION = "p-contoso-partners", "1234567"
PAGED_PARTNER, PAGED_LOCATION = "p-adatum-services", "7654322"  # many claims, for paging and export
MIGRATE, AI, SECURITY = "e-azure-migrate", "e-ai-accelerate", "e-security-workshop"
PAGE_SIZE = 10  # web/js/views/customers.js
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# The visible labels in each language (SPEC §7 and the catalogues in web/i18n/).
WORDS = {
    "en": {
        "sign_in": "Sign in",
        "engagements": "Engagements",
        "eligible": "Eligible",
        "ineligible": "Ineligible",
        "complete": "Complete",
        "add_customer": "Add customer",
        "submit": "Submit claim",
        "notes": "Notes (optional)",
        "submitted_state": "Submitted",
        "consent_accepted_reason": "Consent accepted",
        "submitted": "The claim was submitted.",
        "cancel": "Cancel claim",
        "reason": "Reason for cancelling",
        "confirm": "Yes, cancel the claim",
        "cancelled_state": "Cancelled",
        "cancelled": "The claim was cancelled.",
        "problem": "There is a problem",
        "export": "Export",
        "load_more": "Load more",
        "sign_out": "Sign out",
        "claim_details": "Claim details",
    },
    "es": {
        "sign_in": "Iniciar sesión",
        "engagements": "Compromisos",
        "eligible": "Apto",
        "ineligible": "No apto",
        "complete": "Completo",
        "add_customer": "Agregar cliente",
        "submit": "Enviar reclamación",
        "notes": "Notas (opcional)",
        "submitted_state": "Enviada",
        "consent_accepted_reason": "Consentimiento aceptado",
        "submitted": "Se envió la reclamación.",
        "cancel": "Cancelar reclamación",
        "reason": "Motivo de la cancelación",
        "confirm": "Sí, cancelar la reclamación",
        "cancelled_state": "Cancelada",
        "cancelled": "Se canceló la reclamación.",
        "problem": "Hay un problema",
        "export": "Exportar",
        "load_more": "Cargar más",
        "sign_out": "Cerrar sesión",
        "claim_details": "Detalles de la reclamación",
    },
}
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
# Submitting runs in two of the four language and viewport pairs, cancelling in the other two.
SUBMIT_JOURNEYS = [("en", "desktop"), ("es", "phone")]
CANCEL_JOURNEYS = [("es", "desktop"), ("en", "phone")]


# ---------------------------------------------------------------- set-up over HTTP


@dataclass
class Setup:
    """Claims in a chosen state, made through the API as the partner, customer and operations would."""

    stack: LocalStack
    client: StackClient
    new_tenant: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))  # the screenshots' are repeatable

    def token(self, partner: str = PARTNER, roles: tuple[str, ...] = ("incentives_user",)) -> str:
        return self.client.token(partner, list(roles))

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        answer = self.client.request(method, path, body, token=token or self.token())
        assert answer.status in (200, 201), f"{method} {path}: {answer.status} {answer.text}"
        return answer.json()

    def new_customers(self, count: int, segment: str = "SMB") -> list[str]:
        """Customers of their own (reference data, one load), so limits never collide: their domains."""
        tenants = [self.new_tenant() for _ in range(count)]
        customers = [
            {
                "identifier_type": "tenant_id",
                "value": tenant,
                "name": f"Customer {tenant[:8]}",
                "segment": segment,
                "country": "US",
                "cosell_allowed": True,
                "opportunity_value_usd": None,
            }
            for tenant in tenants
        ]
        domains = [{"domain": f"c{tenant[:8]}.example.com", "tenant_id": tenant} for tenant in tenants]
        self.stack.seed({"customers": customers, "domains": domains})
        return [domain["domain"] for domain in domains]

    def new_customer(self, segment: str = "SMB") -> str:
        return self.new_customers(1, segment)[0]

    def add(
        self,
        name: str,
        *,
        partner: str = PARTNER,
        location: str = LOCATION,
        engagement: str = MIGRATE,
        domain: str | None = None,
    ) -> str:
        domain = domain or self.new_customer()
        added = self.call(
            "POST",
            "/customers",
            {
                "friendly_name": name,
                "location_id": location,
                "identifier": {"type": "domain", "value": domain},
                "engagement_ids": [engagement],
                "customer_contact": {"name": "Ana García", "email": f"ana@{domain}", "language": "es"},
                "partner_contact": {"name": "Sam Lee", "email": "sam@contoso-partners.com"},
            },
            token=self.token(partner),
        )
        return str(added["claims"][0]["claim_id"])

    def consented(self, name: str, deal_size_usd: int = 5000, **where: Any) -> str:
        """A claim whose customer accepted through the consent page: ready to submit (a known customer)."""
        claim_id = self.add(name, **where)
        claim = self.call("GET", f"/claims/{claim_id}")
        email = claim["customer_contact"]["email"]
        self.call(
            "POST",
            f"/claims/{claim_id}/consent-requests",
            {"deal_size_usd": deal_size_usd, "disclaimer_accepted": True},
        )
        mailbox = self.call("GET", "/_local/mailbox.json")
        text = next(item["text"] for item in mailbox["items"] if item["to"] == email)
        link = re.findall(r"http\S+/consent/[\w-]+", text)[0]
        form = urllib.parse.urlencode({"decision": "accept"}).encode()
        with urllib.request.urlopen(urllib.request.Request(link, data=form, method="POST"), timeout=10) as answer:
            assert answer.status == 200
        return claim_id

    def completed(self, name: str, deal_size_usd: int = 5000) -> str:
        claim_id = self.consented(name, deal_size_usd)
        self.call("POST", f"/claims/{claim_id}/submission", {"notes": "delivered"})
        ops = self.token("mci-operations", ("mci_operations",))
        self.call("POST", f"/ops/claims/{claim_id}/review", {"decision": "complete", "reason": "checked"}, token=ops)
        return claim_id


@pytest.fixture(scope="module")
def setup(stack: LocalStack, client: StackClient) -> Setup:
    return Setup(stack, client)


@pytest.fixture(scope="module")
def paged_names(setup: Setup) -> list[str]:
    """One more claim than a page holds, for another partner on Azure Migrate (newest first on the page)."""
    names = [f"Paged customer {n:02d}" for n in range(PAGE_SIZE + 1)]
    for name, domain in zip(names, setup.new_customers(len(names)), strict=True):
        setup.add(name, partner=PAGED_PARTNER, location=PAGED_LOCATION, domain=domain)
    return names


# ---------------------------------------------------------------- the browser


@pytest.fixture
def page_factory(browser: Any, stack: LocalStack) -> Iterator[Any]:
    """new_page(viewport) -> a page in a fresh context; a page error, or a request for anything but this
    stack (a third-party host), fails the test."""
    contexts: list[Any] = []
    errors: list[str] = []
    elsewhere: list[str] = []

    def new_page(viewport: str = "desktop", **options: Any) -> Any:
        context = browser.new_context(accept_downloads=True, **VIEWPORTS[viewport], **options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if _script_error(message) else None)
        page.on("request", lambda request: _off_stack(request.url, stack.url, elsewhere))
        return page

    yield new_page
    for context in contexts:
        context.close()
    assert errors == [], errors
    assert elsewhere == [], "requests that left the local stack"


def _off_stack(url: str, stack_url: str, elsewhere: list[str]) -> None:
    if not url.startswith((f"{stack_url}/", "blob:", "data:")):
        elsewhere.append(url)


def _script_error(message: Any) -> bool:
    """A console error from the app (the browser's own log of a 4xx/5xx or aborted request is not one)."""
    return bool(message.type == "error" and not message.text.startswith("Failed to load resource"))


def check_accessibility(page: Any, screen: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    assert results.violations_count == 0, f"{screen}:\n{results.generate_report()}"


def sign_in(
    page: Any,
    stack: LocalStack,
    language: str = "en",
    roles: tuple[str, ...] = ("incentives_user",),
    partner: str = PARTNER,
    audit: bool = False,
) -> None:
    from playwright.sync_api import expect

    words = WORDS[language]
    page.goto(f"{stack.url}/app/")
    expect(page.get_by_role("heading", level=1, name=WORDS["en"]["sign_in"])).to_be_visible()
    if language == "es":
        page.get_by_role("button", name="Cambiar el idioma a español").click()
        expect(page.get_by_role("heading", level=1, name=words["sign_in"])).to_be_focused()
    if audit:
        check_accessibility(page, "sign in")
    page.get_by_role("radio", name=partner).check()
    for role in ("incentives_user", "incentives_admin", "referral_admin"):
        page.get_by_role("checkbox", name=re.compile(role)).set_checked(role in roles)
    page.get_by_role("button", name=words["sign_in"], exact=True).click()
    expect(page.get_by_role("heading", level=1, name=words["engagements"])).to_be_focused()


def open_customers(page: Any, engagement_name: str, language: str = "en") -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name=engagement_name).click()
    expect(page.get_by_role("heading", level=1, name=engagement_name)).to_be_focused()
    expect(page.get_by_role("tab", name=WORDS[language]["eligible"], exact=True)).to_have_attribute(
        "aria-selected", "true"
    )


def watch_tokens(page: Any) -> list[str]:
    """The bearer tokens the page sends to the API, as they go out."""
    sent: list[str] = []

    def record(request: Any) -> None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            sent.append(header.removeprefix("Bearer "))

    page.on("request", record)
    return sent


def assert_token_kept_out_of_url_and_local_storage(page: Any, tokens: list[str]) -> None:
    assert tokens, "the app sent no bearer token"
    stored = page.evaluate("JSON.stringify(Object.entries(localStorage))")
    for token in set(tokens):
        assert token not in page.url
        assert token not in stored
    assert "token" not in page.url.lower()


# ---------------------------------------------------------------- journeys


@pytest.mark.parametrize(
    ("language", "viewport"), SUBMIT_JOURNEYS, ids=[f"{lang}-{vp}" for lang, vp in SUBMIT_JOURNEYS]
)
def test_partner_signs_in_and_submits_a_consented_claim(
    language: str, viewport: str, stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    words = WORDS[language]
    name = f"Submit {language} {viewport} {uuid.uuid4().hex[:4]}"
    claim_id = setup.consented(name)
    page = page_factory(viewport)
    tokens = watch_tokens(page)

    sign_in(page, stack, language, audit=True)
    check_accessibility(page, "engagements")
    open_customers(page, "Azure Migrate assessment", language)
    for tab in ("eligible", "ineligible", "complete"):
        expect(page.get_by_role("tab", name=words[tab], exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=words["add_customer"])).to_have_attribute(
        "href", "#/engagements/e-azure-migrate/add"
    )
    check_accessibility(page, "customers")
    page.get_by_role("tabpanel").get_by_role("link", name=name, exact=True).click()

    expect(page.get_by_role("heading", level=1, name=name)).to_be_focused()
    assert page.url.endswith(f"#/claims/{claim_id}")
    check_accessibility(page, "claim details")
    # the service's own history reasons read in the page's language (the API writes them in English)
    reason = re.compile(f"(^|: ){re.escape(words['consent_accepted_reason'])}$")  # a phone labels each cell
    expect(page.get_by_role("cell", name=reason)).to_be_visible()
    page.get_by_role("textbox", name=words["notes"]).fill("assessment delivered")
    with page.expect_request(lambda request: request.method == "POST") as sent:
        page.get_by_role("button", name=words["submit"]).click()

    expect(page.get_by_role("status")).to_have_text(words["submitted"])
    expect(page.get_by_text(words["submitted_state"], exact=True).first).to_be_visible()
    assert sent.value.headers.get("idempotency-key")
    assert json.loads(sent.value.post_data) == {"notes": "assessment delivered"}
    assert setup.call("GET", f"/claims/{claim_id}")["state"] == "submitted"
    check_accessibility(page, "claim submitted")
    assert_token_kept_out_of_url_and_local_storage(page, tokens)


@pytest.mark.parametrize(
    ("language", "viewport"), CANCEL_JOURNEYS, ids=[f"{lang}-{vp}" for lang, vp in CANCEL_JOURNEYS]
)
def test_partner_cancels_a_claim_with_a_reason_after_confirming(
    language: str, viewport: str, stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    words = WORDS[language]
    name = f"Cancel {language} {viewport} {uuid.uuid4().hex[:4]}"
    claim_id = setup.add(name)
    page = page_factory(viewport)
    sign_in(page, stack, language)
    open_customers(page, "Azure Migrate assessment", language)
    cancel_word = "Cancel" if language == "en" else "Cancelar"
    page.get_by_role("link", name=f"{cancel_word} {name}").click()

    reason = page.get_by_role("textbox", name=words["reason"])
    expect(reason).to_be_focused()
    # No reason: the API's 422 names the field; the summary and the field both say so.
    page.get_by_role("button", name=words["cancel"]).click()
    page.get_by_role("button", name=words["confirm"]).click()
    expect(page.get_by_role("heading", name=words["problem"])).to_be_visible()
    expect(reason).to_have_attribute("aria-invalid", "true")
    # The summary names the field by its label in the page's language, not the API's field name.
    summary_link = page.get_by_role("link", name=re.compile(f"^{re.escape(words['reason'])}: "))
    expect(summary_link).to_be_visible()
    check_accessibility(page, "cancel with an error")
    summary_link.click()
    expect(reason).to_be_focused()

    reason.fill("customer withdrew")
    page.get_by_role("button", name=words["cancel"]).click()
    with page.expect_request(lambda request: request.method == "POST") as sent:
        page.get_by_role("button", name=words["confirm"]).click()

    expect(page.get_by_role("status")).to_have_text(words["cancelled"])
    assert json.loads(sent.value.post_data) == {"reason": "customer withdrew"}
    assert setup.call("GET", f"/claims/{claim_id}")["state"] == "cancelled"
    expect(page.get_by_role("button", name=words["cancel"])).to_have_count(0)


def test_api_field_errors_read_in_spanish(stack: LocalStack, setup: Setup, page_factory: Any) -> None:
    """Issue 14 item 2: the API's errors[] come by code as the catalogue's sentences in the chosen language."""
    from playwright.sync_api import expect

    words = WORDS["es"]
    name = f"Cancel es errors {uuid.uuid4().hex[:4]}"
    setup.add(name)
    page = page_factory()
    sign_in(page, stack, "es")
    open_customers(page, "Azure Migrate assessment", "es")
    page.get_by_role("link", name=f"Cancelar {name}").click()
    reason = page.get_by_role("textbox", name=words["reason"])
    page.get_by_role("button", name=words["cancel"]).click()
    with page.expect_response(lambda answer: answer.request.method == "POST") as refused:
        page.get_by_role("button", name=words["confirm"]).click()

    errors = refused.value.json()["errors"]
    assert [error["field"] for error in errors] == ["reason"]
    sentence = {
        "missing": "Escriba o elija un valor: es obligatorio.",
        "string_too_short": "Escriba un valor: es demasiado corto.",
    }[errors[0]["code"]]
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_have_accessible_description(re.compile(re.escape(f"Error: {sentence}")))
    expect(page.get_by_role("link", name=f"{words['reason']}: {sentence}")).to_be_visible()
    expect(page.get_by_role("main")).not_to_contain_text(errors[0]["message"])  # not the API's English
    check_accessibility(page, "cancel with an error, in Spanish")


def test_claim_details_show_contacts_the_consent_email_and_emails_that_will_not_be_sent(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    """Issue 14 step 7 (everything GET /claims/{id} returns) and SPEC rule 29 (a refused email is shown)."""
    from playwright.sync_api import expect

    name = f"Details {uuid.uuid4().hex[:4]}"
    claim_id = setup.consented(name)
    claim = setup.call("GET", f"/claims/{claim_id}")
    email = claim["customer_contact"]["email"]
    refused = {"kind": "partner_notification", "to": "sam@contoso-partners.com", "reason": "email_rejected"}

    def with_a_refused_email(route: Any) -> None:
        answer = route.fetch()
        body = answer.json() | {"email_failures": [refused | {"at": "2026-05-04T10:00:00Z"}]}
        route.fulfill(response=answer, body=json.dumps(body))

    page = page_factory()
    page.route(f"{stack.url}/claims/{claim_id}", with_a_refused_email)
    sign_in(page, stack)
    page.goto(f"{stack.url}/app/#/claims/{claim_id}")
    expect(page.get_by_role("heading", level=1, name=name)).to_be_focused()

    main = page.get_by_role("main")
    expect(main).to_contain_text("Added (Add customer)")
    expect(main).to_contain_text(LOCATION)
    contacts = page.get_by_role("heading", level=2, name="Contacts")
    expect(contacts).to_be_visible()
    expect(main).to_contain_text("Ana García")
    expect(main).to_contain_text("Sam Lee")
    expect(page.get_by_role("heading", level=2, name="Consent email")).to_be_visible()
    expect(main).to_contain_text(email)
    expect(main).to_contain_text(re.compile(r"Consent given on \w+"))
    sent = page.get_by_role("table", name="Consent emails sent")
    expect(sent.get_by_role("row")).to_have_count(2)  # the header and the one email sent
    expect(sent).to_contain_text(email)
    expect(sent).to_contain_text("Deal size: $5,000.00")
    expect(main).to_contain_text(
        "The email to sam@contoso-partners.com was refused for good (May 4, 2026, 10:00 AM UTC): correct the address"
    )
    check_accessibility(page, "claim details with contacts and the consent email")


def test_keeping_the_claim_at_the_confirmation_step_sends_nothing(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    name = f"Keep {uuid.uuid4().hex[:4]}"
    claim_id = setup.add(name)
    page = page_factory()
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    sign_in(page, stack)
    page.goto(f"{stack.url}/app/#/claims/{claim_id}")
    page.get_by_role("textbox", name="Reason for cancelling").fill("maybe")
    page.get_by_role("button", name="Cancel claim").click()
    page.get_by_role("button", name="No, keep the claim").click()

    expect(page.get_by_role("button", name="Cancel claim")).to_be_focused()
    assert [url for url in posts if "/cancellation" in url] == []
    assert setup.call("GET", f"/claims/{claim_id}")["state"] == "pending_consent"


def test_tabs_work_from_the_keyboard(stack: LocalStack, page_factory: Any) -> None:
    from playwright.sync_api import expect

    page = page_factory()
    sign_in(page, stack)
    open_customers(page, "Azure Migrate assessment")
    eligible, ineligible, complete = (
        page.get_by_role("tab", name=n, exact=True) for n in ("Eligible", "Ineligible", "Complete")
    )
    eligible.focus()

    page.keyboard.press("ArrowRight")
    expect(ineligible).to_be_focused()
    expect(ineligible).to_have_attribute("aria-selected", "true")
    expect(ineligible).to_have_attribute("tabindex", "0")
    expect(eligible).to_have_attribute("tabindex", "-1")
    expect(page.get_by_role("tabpanel")).to_have_attribute("aria-labelledby", "customers-tab-ineligible")
    assert page.url.endswith("tab=ineligible")
    page.keyboard.press("End")
    expect(complete).to_be_focused()
    page.keyboard.press("ArrowRight")  # wraps
    expect(eligible).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(complete).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Home")
    expect(eligible).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Tab")  # one tab stop for the tab list: on to the panel's content
    expect(eligible).not_to_be_focused()
    expect(ineligible).not_to_be_focused()


def test_eligible_tab_pages_with_load_more(stack: LocalStack, paged_names: list[str], page_factory: Any) -> None:
    from playwright.sync_api import expect

    page = page_factory()
    sign_in(page, stack, partner=PAGED_PARTNER)
    open_customers(page, "Azure Migrate assessment")
    rows = page.get_by_role("tabpanel").get_by_role("row")
    expect(rows).to_have_count(PAGE_SIZE + 1)  # the header row and a page
    page.get_by_role("button", name="Load more").click()

    expect(rows).to_have_count(len(paged_names) + 1)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(page.get_by_role("status")).to_have_text("1 more customers shown.")
    shown = [text.strip() for text in page.get_by_role("tabpanel").get_by_role("rowheader").all_inner_texts()]
    assert sorted(shown) == sorted(paged_names)


def test_a_double_click_on_load_more_on_a_slow_network_adds_the_next_page_once(
    stack: LocalStack, paged_names: list[str], page_factory: Any
) -> None:
    """A partner presses Load more again while the first press is still on its way: the rows come once."""
    from playwright.sync_api import expect

    page = page_factory()
    sign_in(page, stack, partner=PAGED_PARTNER)
    open_customers(page, "Azure Migrate assessment")
    rows = page.get_by_role("tabpanel").get_by_role("row")
    expect(rows).to_have_count(PAGE_SIZE + 1)
    pages: list[str] = []
    page.on("request", lambda request: pages.append(request.url) if "cursor=" in request.url else None)
    slow_network(page, 800)
    page.get_by_role("button", name="Load more").dblclick()

    expect(page.get_by_role("status")).to_have_text("1 more customers shown.", timeout=10_000)
    expect(rows).to_have_count(len(paged_names) + 1)
    shown = [text.strip() for text in page.get_by_role("tabpanel").get_by_role("rowheader").all_inner_texts()]
    assert sorted(shown) == sorted(paged_names)
    assert len(pages) == 1, pages


def test_export_downloads_every_page_of_the_tab_as_csv(
    stack: LocalStack, paged_names: list[str], page_factory: Any
) -> None:
    page = page_factory()
    sign_in(page, stack, partner=PAGED_PARTNER)
    open_customers(page, "Azure Migrate assessment")
    # The export asks for 100 a page; ask the API for 4, so this tab takes three pages to export.
    pages: list[str] = []

    def small_pages(route: Any) -> None:
        pages.append(route.request.url)
        route.continue_(url=route.request.url.replace("limit=100", "limit=4"))

    page.route(re.compile(r".*/customers\?.*limit=100.*"), small_pages)
    with page.expect_download() as started:
        page.get_by_role("button", name="Export").click()

    download = started.value
    assert len(pages) == 3
    assert ["cursor=" in url for url in pages] == [False, True, True]
    assert download.suggested_filename == "customers-e-azure-migrate-eligible.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert sorted(row["friendly_name"] for row in rows) == sorted(paged_names)
    assert {row["state"] for row in rows} == {"pending_consent"}
    assert {row["actions"] for row in rows} == {"send_consent cancel"}
    assert all(row["identifier_type"] == "domain" and row["deadline"] and row["claim_id"] for row in rows)


def test_html_in_a_friendly_name_shows_as_text_and_never_runs(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    name = f'<img src=x onerror="window.__injected=1"><script>window.__injected=2</script>{uuid.uuid4().hex[:4]}'
    setup.add(name)
    page = page_factory()
    sign_in(page, stack)
    open_customers(page, "Azure Migrate assessment")

    link = page.get_by_role("tabpanel").get_by_role("link", name=name, exact=True)
    expect(link).to_have_text(name)
    assert page.evaluate("window.__injected") is None
    assert page.locator("main img, main script").count() == 0
    link.click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_focused()
    assert page.evaluate("window.__injected") is None


def test_complete_rows_link_the_claim_to_its_details_and_referrals_follow_the_role(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    name = f"Completed {uuid.uuid4().hex[:4]}"
    claim_id = setup.completed(name, deal_size_usd=25000)  # Azure Migrate refers deals from 10000 USD
    referral_id = setup.call("GET", f"/claims/{claim_id}")["referral_id"]
    page = page_factory()
    sign_in(page, stack, roles=("incentives_user", "referral_admin"))
    open_customers(page, "Azure Migrate assessment")
    page.get_by_role("tab", name="Complete").click()
    page.get_by_role("tabpanel").get_by_role("link", name=claim_id).click()

    expect(page.get_by_role("heading", level=1, name=name)).to_be_focused()
    expect(page.get_by_text(referral_id)).to_be_visible()
    expect(page.get_by_role("button", name="Submit claim")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel claim")).to_have_count(0)
    check_accessibility(page, "completed claim with referral")

    # Without referral_admin: told a referral exists, never shown it (and never asked for it).
    other = page_factory()
    referral_reads: list[str] = []
    other.on("request", lambda request: referral_reads.append(request.url) if "/referrals/" in request.url else None)
    sign_in(other, stack)
    other.goto(f"{stack.url}/app/#/claims/{claim_id}")
    expect(other.get_by_text("A referral exists for this claim.")).to_be_visible()
    expect(other.get_by_text(referral_id)).to_have_count(0)
    assert referral_reads == []


def test_a_role_without_claims_is_offered_no_claim_actions(stack: LocalStack, page_factory: Any) -> None:
    from playwright.sync_api import expect

    page = page_factory()
    sign_in(page, stack, roles=("referral_admin",))
    check_accessibility(page, "engagements (referral_admin)")
    page.get_by_role("link", name="Azure Migrate assessment").click()

    expect(page.get_by_role("alert")).to_contain_text("Your role does not allow this.")
    expect(page.get_by_role("button", name="Add customer")).to_have_count(0)


def test_ineligible_reasons_are_sentences_and_msx_engagements_show_the_note(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    # An enterprise customer, known from a security workshop claim, is not eligible for Azure Migrate (SMB, SMC).
    domain = setup.new_customer(segment="ENT")
    setup.consented(f"Enterprise {domain[:9]}", engagement=SECURITY, domain=domain)
    page = page_factory()
    sign_in(page, stack, "es")
    page.reload()  # the language is remembered
    expect(page.get_by_role("heading", level=1, name="Compromisos")).to_be_visible()
    open_customers(page, "Azure Migrate assessment", "es")
    page.get_by_role("tab", name="No apto").click()
    panel = page.get_by_role("tabpanel")
    expect(
        panel.get_by_role("listitem").filter(has_text="El cliente no cumple los criterios del compromiso.")
    ).not_to_have_count(0)
    check_accessibility(page, "ineligible tab")

    page.get_by_role("link", name="Compromisos", exact=True).click()
    open_customers(page, "AI Accelerate (variable)", "es")
    page.get_by_role("tab", name="No apto").click()
    expect(page.get_by_role("note")).to_contain_text("MSX opportunity ids")


def test_a_network_failure_keeps_what_was_typed_and_retries_with_the_same_key(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    name = f"Offline {uuid.uuid4().hex[:4]}"
    claim_id = setup.consented(name)
    page = page_factory()
    sign_in(page, stack)
    page.goto(f"{stack.url}/app/#/claims/{claim_id}")
    notes = page.get_by_role("textbox", name="Notes (optional)")
    notes.fill("typed before the outage")
    keys: list[str] = []
    page.route("**/submission", lambda route: (keys.append(route.request.headers["idempotency-key"]), route.abort())[1])
    page.get_by_role("button", name="Submit claim").click()

    expect(page.get_by_role("alert")).to_contain_text("The service could not be reached.")
    expect(notes).to_have_value("typed before the outage")
    page.unroute("**/submission")
    with page.expect_request("**/submission") as again:
        page.get_by_role("button", name="Submit claim").click()
    expect(page.get_by_role("status")).to_have_text("The claim was submitted.")
    assert again.value.headers["idempotency-key"] == keys[0]


def test_a_server_error_on_submit_keeps_the_key_so_pressing_again_is_a_safe_retry(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    """A 5xx may come after the API did the work (here: the claim is submitted, then a gateway answers 502): the
    key is kept until a definite answer, so pressing again is answered with the first outcome, not a conflict."""
    from playwright.sync_api import expect

    claim_id = setup.consented(f"Gateway {uuid.uuid4().hex[:4]}")
    page = page_factory()
    sign_in(page, stack)
    page.goto(f"{stack.url}/app/#/claims/{claim_id}")
    keys: list[str] = []

    def submitted_then_bad_gateway(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) > 1:
            route.continue_()
            return
        route.fetch()  # the API submits the claim...
        route.fulfill(  # ...and the answer the browser gets is a gateway's 502
            status=502,
            headers={"Content-Type": "application/problem+json"},
            body=json.dumps({"status": 502, "code": "bad_gateway", "detail": ""}),
        )

    page.route("**/submission", submitted_then_bad_gateway)
    page.get_by_role("button", name="Submit claim").click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_role("button", name="Submit claim").click()
    expect(page.get_by_role("status")).to_have_text("The claim was submitted.")
    assert len(keys) == 2, keys
    assert keys[0] == keys[1]


def test_notes_typed_when_the_session_ends_come_back_after_signing_in_again(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    """The API refuses the session (401) as the partner submits: after signing in again the claim page comes back
    with the notes they typed (a draft of theirs, like a wizard's answers), and they are forgotten once sent."""
    from playwright.sync_api import expect

    claim_id = setup.consented(f"Relogin {uuid.uuid4().hex[:4]}")
    page = page_factory()
    sign_in(page, stack)
    page.goto(f"{stack.url}/app/#/claims/{claim_id}")
    page.get_by_role("textbox", name="Notes (optional)").fill("typed as the session ended")
    page.get_by_role("textbox", name="Reason for cancelling").fill("a reason typed too")
    page.route(
        "**/submission",
        lambda route: route.fulfill(
            status=401, headers={"Content-Type": "application/json"}, body=json.dumps({"message": "Unauthorized"})
        ),
    )
    page.get_by_role("button", name="Submit claim").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_focused()
    page.unroute("**/submission")
    page.get_by_role("radio", name=PARTNER).check()
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page.get_by_role("textbox", name="Notes (optional)")).to_have_value("typed as the session ended")
    expect(page.get_by_role("textbox", name="Reason for cancelling")).to_have_value("a reason typed too")
    with page.expect_request("**/submission") as sent:
        page.get_by_role("button", name="Submit claim").click()
    expect(page.get_by_role("status")).to_have_text("The claim was submitted.")
    assert json.loads(sent.value.post_data or "{}") == {"notes": "typed as the session ended"}
    drafts = page.evaluate("JSON.stringify(Object.entries(sessionStorage).filter(([k]) => k !== 'mci.session'))")
    assert "typed as the session ended" not in drafts


def test_busy_answers_are_retried_after_retry_after(stack: LocalStack, page_factory: Any) -> None:
    from playwright.sync_api import expect

    page = page_factory()
    sign_in(page, stack)
    busy: list[int] = []

    def throttle_once(route: Any) -> None:
        if not busy:
            busy.append(503)
            route.fulfill(
                status=503,
                headers={"Retry-After": "0", "Content-Type": "application/problem+json"},
                body=json.dumps({"status": 503, "code": "service_unavailable", "detail": "busy"}),
            )
        else:
            route.continue_()

    page.route("**/engagements", throttle_once)
    page.get_by_role("link", name="Engagements", exact=True).click()
    page.reload()

    expect(page.get_by_role("link", name="Azure Migrate assessment")).to_be_visible()
    assert busy == [503]


def test_sign_out_forgets_the_session(stack: LocalStack, page_factory: Any) -> None:
    from playwright.sync_api import expect

    page = page_factory("phone")
    tokens = watch_tokens(page)
    sign_in(page, stack)
    page.reload()  # the session survives a reload (sessionStorage)
    expect(page.get_by_role("heading", level=1, name="Engagements")).to_be_visible()
    assert_token_kept_out_of_url_and_local_storage(page, tokens)
    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_focused()
    assert page.evaluate("sessionStorage.getItem('mci.session')") is None
    page.goto(f"{stack.url}/app/#/engagements")
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()


def oidc_config(stack: LocalStack) -> Any:
    """A route handler serving the app a config.json as the deploy writes it on AWS: OIDC against the issuer
    the authorizer trusts (here the local one, whose client is local/oidc.py's)."""

    def serve(route: Any) -> None:
        local = json.loads(urllib.request.urlopen(f"{stack.url}/app/config.json", timeout=10).read())
        config = {key: local[key] for key in ("apiUrl", "issuer", "clientId")} | {"auth": "oidc", "scope": "openid"}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(config))

    return serve


def test_oidc_sign_in_uses_the_code_flow_with_pkce_and_keeps_the_token_in_memory(
    stack: LocalStack, page_factory: Any
) -> None:
    """Issue 14 item 1: on AWS the app signs in by OIDC (authorization code with PKCE S256) against JwtIssuer."""
    from playwright.sync_api import expect

    page = page_factory()
    page.route(f"{stack.url}/app/config.json", oidc_config(stack))
    tokens = watch_tokens(page)
    addresses: list[str] = []
    page.on("request", lambda request: addresses.append(request.url))
    token_answers: list[Any] = []
    page.on("response", lambda answer: token_answers.append(answer) if "/oauth2/token" in answer.url else None)

    page.goto(f"{stack.url}/app/")
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_focused()
    check_accessibility(page, "OIDC sign in")
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page.get_by_role("heading", level=1, name="Local identity provider")).to_be_visible()
    authorize = urllib.parse.urlsplit(page.url)
    asked = dict(urllib.parse.parse_qsl(authorize.query))
    assert authorize.path == "/_local/oauth2/authorize"
    assert (asked["response_type"], asked["code_challenge_method"], asked["client_id"]) == (
        "code",
        "S256",
        "mci-partner-web",
    )
    assert asked["redirect_uri"] == f"{stack.url}/app/"
    # While away (same origin here): the pending request waits in this tab's sessionStorage, never localStorage.
    pending = page.evaluate("[Object.keys(localStorage), Object.keys(sessionStorage)]")
    assert [key for key in pending[0] if "oidc" in key] == []
    assert [key for key in pending[1] if key.startswith("mci.oidc.")] == [f"mci.oidc.{asked['state']}"]
    check_accessibility(page, "local identity provider")
    page.get_by_role("radio", name=PARTNER).check()
    page.get_by_role("checkbox", name="incentives_user").check()
    page.get_by_role("checkbox", name="referral_admin").check()
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1, name="Engagements")).to_be_focused()
    expect(page.get_by_role("link", name="Azure Migrate assessment")).to_be_visible()
    assert page.url == f"{stack.url}/app/#/engagements"  # the code and state are gone from the address
    assert len(token_answers) == 1
    issued = token_answers[0].json()
    claims = stack.tokens.verify(issued["access_token"])
    assert (claims["partner_id"], claims["roles"], claims["client_id"]) == (
        PARTNER,
        ["incentives_user", "referral_admin"],
        "mci-partner-web",
    )
    assert set(tokens) == {issued["access_token"]}  # the API gets the access token as the bearer
    assert [key for key in page.evaluate("Object.keys(sessionStorage)") if key.startswith("mci.oidc.")] == []
    stored = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    for secret in (issued["access_token"], issued["id_token"]):
        assert secret not in stored
        assert all(secret not in address for address in addresses)
    expect(page.get_by_text(f"Signed in: {PARTNER}")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_focused()
    sent = len(tokens)
    page.goto(f"{stack.url}/app/#/engagements")  # a signed-out app offers only sign in, and sends no token
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    assert len(tokens) == sent
    assert issued["access_token"] not in page.evaluate("JSON.stringify(Object.entries(sessionStorage))")


def test_oidc_sign_in_from_a_link_comes_back_to_the_page_asked_for(stack: LocalStack, page_factory: Any) -> None:
    """Signed out (a link, a reload: OIDC keeps tokens in memory), a page of the app asked for: after the round trip
    to the identity provider the app opens that page, not the engagements (the address travels in the state)."""
    from playwright.sync_api import expect

    page = page_factory()
    page.route(f"{stack.url}/app/config.json", oidc_config(stack))
    page.goto(f"{stack.url}/app/#/engagements/{MIGRATE}/customers?tab=complete")
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_focused()
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Local identity provider")).to_be_visible()
    page.get_by_role("radio", name=PARTNER).check()
    page.get_by_role("checkbox", name="incentives_user").check()
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1, name="Azure Migrate assessment")).to_be_focused()
    expect(page.get_by_role("tab", name="Complete", exact=True)).to_have_attribute("aria-selected", "true")
    assert page.url == f"{stack.url}/app/#/engagements/{MIGRATE}/customers?tab=complete"  # no code, no state


def test_oidc_sign_in_refused_by_the_provider_says_so(stack: LocalStack, page_factory: Any) -> None:
    from playwright.sync_api import expect

    page = page_factory()
    page.route(f"{stack.url}/app/config.json", oidc_config(stack))
    page.goto(f"{stack.url}/app/?error=access_denied&state=unknown")

    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_focused()
    expect(page.get_by_role("alert")).to_have_text("Sign-in did not complete. Try again.")
    assert "error" not in page.url


def test_app_pages_run_no_inline_script_under_the_policy(stack: LocalStack, page_factory: Any) -> None:
    page = page_factory()
    response = page.goto(f"{stack.url}/app/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    html = page.content()
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None  # every script is a file
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handler attributes


def test_a_claim_changed_elsewhere_is_explained_as_a_conflict(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    claim_id = setup.consented(f"Stale {uuid.uuid4().hex[:4]}")
    page = page_factory()
    sign_in(page, stack)
    page.goto(f"{stack.url}/app/#/claims/{claim_id}")
    expect(page.get_by_role("button", name="Submit claim")).to_be_visible()
    setup.call("POST", f"/claims/{claim_id}/cancellation", {"reason": "cancelled by a colleague"})
    page.get_by_role("button", name="Submit claim").click()

    expect(page.get_by_role("alert")).to_contain_text("This cannot be done in the claim's current state")
    check_accessibility(page, "conflict")


def test_attention_required_lists_waiting_claims_soonest_first_and_links_to_them(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:4]
    pending, granted = f"Waiting consent {tag}", f"Waiting submission {tag}"
    setup.add(pending)  # consent deadline in 30 days
    setup.consented(granted)  # submission deadline in 90 days
    page = page_factory()
    sign_in(page, stack)
    expect(page.get_by_role("heading", level=2, name="Attention required")).to_be_visible()
    rows = page.get_by_role("table", name="Attention required").get_by_role("row")
    first = rows.filter(has=page.get_by_role("link", name=pending, exact=True))
    second = rows.filter(has=page.get_by_role("link", name=granted, exact=True))
    expect(first).to_contain_text("Consent has not been requested yet: send the customer consent email.")
    expect(first).to_contain_text(re.compile(r"\(29 days left\)|\(30 days left\)"))
    expect(first).to_contain_text("Azure Migrate assessment")
    expect(second).to_contain_text("The customer consented: submit the claim before the submission deadline.")
    names = rows.get_by_role("link").all_inner_texts()
    assert names.index(pending) < names.index(granted), names  # soonest deadline first
    check_accessibility(page, "engagements with attention required")
    first.get_by_role("link", name=pending, exact=True).click()
    expect(page.get_by_role("heading", level=1, name=pending)).to_be_focused()

    # Another partner with nothing waiting, in Spanish: the heading and the empty state sentence.
    other = page_factory("phone")
    sign_in(other, stack, "es", partner="p-northwind-consulting")
    expect(other.get_by_role("heading", level=2, name="Requiere atención")).to_be_visible()
    expect(other.get_by_text("Ninguna reclamación requiere su atención.")).to_be_visible()
    expect(other.get_by_role("link", name=pending)).to_have_count(0)
    check_accessibility(other, "engagements with nothing to attend (es, phone)")


# Last: moves the stack's clock past every deadline made so far.
def test_a_passed_deadline_is_explained_and_the_notes_are_kept(
    stack: LocalStack, setup: Setup, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    claim_id = setup.consented(f"Late {uuid.uuid4().hex[:4]}")
    page = page_factory()
    sign_in(page, stack, "es")
    page.goto(f"{stack.url}/app/#/claims/{claim_id}")
    page.get_by_role("textbox", name="Notas (opcional)").fill("demasiado tarde")
    setup.call("POST", "/_local/clock", {"advance_days": 91})  # past the 90-day submission window
    page.get_by_role("button", name="Enviar reclamación").click()

    expect(page.get_by_role("alert")).to_contain_text("El plazo para hacer esto ha vencido.")
    expect(page.get_by_role("textbox", name="Notas (opcional)")).to_have_value("demasiado tarde")
