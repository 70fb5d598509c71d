"""Issue 14, the wizards in a real browser: Add customer, Claim customer and the consent email.

Headless Chromium drives the partner web app at /app/ against the local stack in this process. Each test
signs in as its own partner (or uses its own customer), so the tests share one stack without touching each
other's limits. The steps are done with the keyboard where the test is about the keyboard; axe-core checks
every wizard step it passes through (WCAG 2.0/2.1 A and AA).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.stack import LocalStack
from tests.browser.conftest import slow_network
from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.browser

MIGRATE = "e-azure-migrate"
SECURITY = "e-security-workshop"
ACCELERATE = "e-ai-accelerate"
LEGACY = "e-legacy-modernize"
CONTOSO = ("p-contoso-partners", "1234567")
NORTHWIND = ("p-northwind-consulting", "7654321")
ADATUM = ("p-adatum-services", "7654322")
CLAIM_ROLES = ["incentives_user"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DISCLAIMER_LEGEND = "Disclaimer"  # the disclaimer checkbox's group (its legend is visually hidden)
REVIEW = "Check your answers before adding the customer"
IDENTIFIER_TYPES = {"domain": "Domain", "tenant_id": "Tenant ID", "tpid": "TPID", "subscription_id": "Subscription ID"}


class App:
    """One signed-in browser tab on the web app, with the helpers the wizard tests share."""

    def __init__(
        self, page: Any, stack: LocalStack, client: StackClient, partner_id: str, expires_in: int | None = None
    ) -> None:
        self.page = page
        self.stack = stack
        self.client = client
        self.partner_id = partner_id
        self.token = client.token(partner_id, CLAIM_ROLES, **({} if expires_in is None else {"expires_in": expires_in}))
        self.api_token = self.token if expires_in is None else client.token(partner_id, CLAIM_ROLES)
        self.axe_checked: list[str] = []

    def open(self, route: str) -> None:
        self.page.goto(f"{self.stack.url}/app/#{route}")
        self.heading_focused()

    def heading_focused(self, name: str | re.Pattern[str] | None = None) -> None:
        from playwright.sync_api import expect

        heading = self.page.get_by_role("heading", level=1)
        if name is not None:
            expect(heading).to_have_text(name)
        expect(heading).to_be_focused()

    def axe(self) -> None:
        """axe-core on the page as it is now: no WCAG 2.x A/AA violation."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
        assert results.violations_count == 0, results.generate_report()
        self.axe_checked.append(self.page.url)

    def tab_to(self, locator: Any, presses: int = 40) -> None:
        """Tab (forward) until `locator` has the focus: the keyboard alone reaches it."""
        for _ in range(presses):
            if locator.evaluate("el => el === document.activeElement"):
                return
            self.page.keyboard.press("Tab")
        active = self.page.evaluate("() => document.activeElement.outerHTML.slice(0, 200)")
        pytest.fail(f"Tab never reached {locator}; focus is on {active}")

    def key_type(self, locator: Any, text: str) -> None:
        self.tab_to(locator)
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(text)

    def key_press(self, locator: Any, key: str = "Enter") -> None:
        self.tab_to(locator)
        self.page.keyboard.press(key)

    def button(self, name: str) -> Any:
        return self.page.get_by_role("button", name=name, exact=True)

    def heading_focused_name(self, name: str) -> None:
        """The page's <h1> reads `name` (whatever has the focus)."""
        from playwright.sync_api import expect

        expect(self.page.get_by_role("heading", level=1)).to_have_text(name)

    def review(self, title: str = REVIEW) -> Any:
        """The "check your answers" form, by its heading (the form is labelled by it)."""
        return self.page.get_by_role("form", name=title)

    def error_summary(self) -> Any:
        """The error summary as a screen reader meets it: the alert ("There is a problem", then the links)."""
        return self.page.get_by_role("alert")

    def error_summary_focused(self, text: str) -> None:
        """The summary says `text` and has the focus (GOV.UK: the focus is on the summary's box, around the alert)."""
        from playwright.sync_api import expect

        expect(self.error_summary()).to_contain_text(text)
        expect(self.page.locator(":focus").get_by_role("alert")).to_contain_text(text)

    def field_error(self, control: Any, message: str | re.Pattern[str]) -> None:
        """The message beside a field (or a group), as assistive technology reads it: its accessible description."""
        from playwright.sync_api import expect

        expect(control).to_have_accessible_description(
            message if isinstance(message, re.Pattern) else re.compile(re.escape(message))
        )

    def api(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.client.request(method, path, body, token=self.api_token)
        assert answer.status < 300, answer.text
        return answer.json() if answer.text else None

    def claims_of(self, engagement_id: str, friendly_name: str) -> list[dict[str, Any]]:
        """This partner's claims named `friendly_name` on the engagement's Customers page (every tab)."""
        found = []
        for tab in ("eligible", "complete"):
            page = self.api("GET", f"/engagements/{engagement_id}/customers?tab={tab}&limit=100")
            found += [
                item for item in page["items"] if item["kind"] == "claim" and item["friendly_name"] == friendly_name
            ]
        return found


@pytest.fixture
def app(new_context: Any, stack: LocalStack, client: StackClient) -> Any:
    """app(partner_id, language="en") -> an App signed in as an incentives user of that partner, in a context of
    its own on the process's one Chromium."""

    def start(partner_id: str, language: str = "en", expires_in: int | None = None, **options: Any) -> App:
        """`expires_in`: the browser's session token expires that many seconds from now (negative: already)."""
        context = new_context(**({"viewport": {"width": 1280, "height": 900}} | options))
        built = App(context.new_page(), stack, client, partner_id, expires_in)
        stored = {"token": built.token, "partnerId": partner_id, "user": "tester", "roles": CLAIM_ROLES}
        context.add_init_script(
            f"sessionStorage.setItem('mci.session', {json.dumps(json.dumps(stored))});"
            f"localStorage.setItem('mci.language', {json.dumps(language)});"
        )
        return built

    return start


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


# --- Add customer -------------------------------------------------------------------------------------


def test_add_customer_fixed_payment_with_the_keyboard_alone(app: Any) -> None:
    """English, keyboard only: every step's heading takes focus, axe passes, Back keeps what was typed."""
    from playwright.sync_api import expect

    ui = app(CONTOSO[0])
    page = ui.page
    name = unique("Fabrikam")
    ui.open(f"/engagements/{MIGRATE}/add")
    assert "run=" in page.url
    assert "step=name" in page.url

    ui.heading_focused("What friendly name do you want to give this claim?")
    expect(page.get_by_text("Add customer", exact=True)).to_be_visible()
    ui.axe()
    ui.key_type(page.get_by_label("Friendly name", exact=True), name)
    page.keyboard.press("Enter")

    ui.heading_focused("Which location is making the claim?")
    location = page.get_by_role("group", name="Microsoft AI Cloud Partner Program location")
    # Enrolled locations only: Seattle (1234568) is not enrolled.
    expect(location.get_by_role("radio")).to_have_count(1)
    ui.axe()
    ui.key_press(location.get_by_role("radio", name="Contoso Partners Madrid (1234567)"), "Space")
    ui.key_press(ui.button("Next"))

    ui.heading_focused("How do you want to identify the customer?")
    types = page.get_by_role("group", name="Customer identifier type")
    # Only the types the engagement accepts.
    expect(types.get_by_role("radio")).to_have_count(3)
    ui.axe()
    ui.key_press(types.get_by_role("radio", name="Domain"), "Space")
    ui.key_type(page.get_by_label("Customer identifier", exact=True), "fabrikam.com")

    # Back (the link, by keyboard) keeps what was typed on both steps.
    ui.key_press(page.get_by_role("link", name="Back"))
    ui.heading_focused("Which location is making the claim?")
    expect(location.get_by_role("radio", name="Contoso Partners Madrid (1234567)")).to_be_checked()
    ui.key_press(ui.button("Next"))
    ui.heading_focused("How do you want to identify the customer?")
    expect(types.get_by_role("radio", name="Domain")).to_be_checked()
    expect(page.get_by_label("Customer identifier", exact=True)).to_have_value("fabrikam.com")
    ui.key_press(ui.button("Next"))

    ui.heading_focused("Which engagements do you want to add the customer to?")
    eligible = page.get_by_role("group", name="Eligible engagements")
    expect(eligible.get_by_role("checkbox", name=re.compile("Azure Migrate"))).to_be_checked()
    # Ineligible engagements are listed with their reasons as sentences.
    expect(page.get_by_role("heading", name="Not eligible")).to_be_visible()
    expect(page.get_by_text("accepts msx_opportunity_id, not domain")).to_be_visible()
    ui.axe()
    ui.key_press(ui.button("Next"))

    ui.heading_focused("Who are the contacts for this claim?")
    ui.axe()
    customer = page.get_by_role("group", name="Customer contact")
    partner = page.get_by_role("group", name="Your organisation's contact")
    ui.key_type(customer.get_by_label("Full name", exact=True), "Lucía Fernández")
    ui.key_type(customer.get_by_label("Email address", exact=True), "lucia@fabrikam.com")
    ui.key_press(customer.get_by_role("radio", name="English"), "ArrowDown")  # arrows move within a radio group
    expect(customer.get_by_role("radio", name="Español")).to_be_checked()
    ui.key_type(partner.get_by_label("Full name", exact=True), "Sam Lee")
    ui.key_type(partner.get_by_label("Email address", exact=True), "sam@contoso.example")
    # The browser's Back and Forward keep what was typed even before Next.
    page.go_back()
    ui.heading_focused("Which engagements do you want to add the customer to?")
    page.go_forward()
    ui.heading_focused("Who are the contacts for this claim?")
    expect(customer.get_by_label("Full name", exact=True)).to_have_value("Lucía Fernández")
    expect(partner.get_by_label("Email address", exact=True)).to_have_value("sam@contoso.example")
    ui.key_press(ui.button("Next"))

    ui.heading_focused("Check your answers before adding the customer")
    ui.axe()
    review = ui.review()
    for text in (
        name,
        "Contoso Partners Madrid (1234567)",
        "Domain: fabrikam.com",
        "Azure Migrate",
        "lucia@fabrikam.com",
        "Español",
        "Sam Lee",
    ):
        expect(review).to_contain_text(text)
    # Change goes back to the step and Next returns to the review.
    ui.key_press(page.get_by_role("link", name="Change Friendly name"))
    ui.heading_focused("What friendly name do you want to give this claim?")
    expect(page.get_by_label("Friendly name", exact=True)).to_have_value(name)
    ui.key_press(ui.button("Next"))
    ui.heading_focused("Check your answers before adding the customer")
    ui.key_press(ui.button("Add customer"))

    ui.heading_focused("Customer added")
    ui.axe()
    claims = ui.claims_of(MIGRATE, name)
    assert len(claims) == 1, claims
    link = page.get_by_role("link", name="Azure Migrate assessment")
    expect(link).to_have_attribute("href", f"#/claims/{claims[0]['claim_id']}")
    ui.key_press(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def start_add(ui: App, *, engagement_id: str, name: str, location: str) -> None:
    """Add customer with the mouse (the keyboard test covers the keyboard): name and location."""
    page = ui.page
    ui.open(f"/engagements/{engagement_id}/add")
    page.get_by_label("Friendly name", exact=True).fill(name)
    ui.button("Next").click()
    page.get_by_role("radio", name=location).check()
    ui.button("Next").click()
    ui.heading_focused("How do you want to identify the customer?")


def choose_identifier(ui: App, kind: str, value: str) -> None:
    types = ui.page.get_by_role("group", name="Customer identifier type")
    types.get_by_role("radio", name=IDENTIFIER_TYPES[kind], exact=True).check()
    ui.page.get_by_label("Customer identifier", exact=True).fill(value)
    ui.button("Next").click()


def fill_contacts(ui: App, customer_name: str, customer_email: str, partner_email: str = "sam@partner.example") -> None:
    page = ui.page
    customer = page.get_by_role("group", name="Customer contact")
    customer.get_by_label("Full name", exact=True).fill(customer_name)
    customer.get_by_label("Email address", exact=True).fill(customer_email)
    partner = page.get_by_role("group", name="Your organisation's contact")
    partner.get_by_label("Full name", exact=True).fill("Sam Lee")
    partner.get_by_label("Email address", exact=True).fill(partner_email)
    ui.button("Next").click()


def fill_to_review(
    ui: App, *, engagement_id: str, name: str, location: str, identifier: tuple[str, str], contact_email: str
) -> None:
    """Through the Add customer steps to the review, the route's engagement chosen."""
    from playwright.sync_api import expect

    start_add(ui, engagement_id=engagement_id, name=name, location=location)
    choose_identifier(ui, *identifier)
    ui.heading_focused("Which engagements do you want to add the customer to?")
    ui.button("Next").click()
    fill_contacts(ui, "Alex Kim", contact_email)
    ui.heading_focused(REVIEW)
    expect(ui.review()).to_be_visible()


def test_add_customer_variable_payment_in_spanish_with_the_quote(app: Any) -> None:
    """Spanish labels; an MSX opportunity; one engagement only, with hours; the proposed payment and breakdown."""
    from playwright.sync_api import expect

    ui = app(CONTOSO[0], "es")
    page = ui.page
    name = unique("Relecloud")
    ui.open(f"/engagements/{ACCELERATE}/add")
    ui.heading_focused("¿Qué nombre descriptivo quiere dar a esta reclamación?")
    expect(page.get_by_text("Agregar cliente", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Atrás")).to_be_visible()
    page.get_by_label("Nombre descriptivo", exact=True).fill(name)
    ui.button("Siguiente").click()
    ui.heading_focused("¿Qué ubicación hace la reclamación?")
    page.get_by_role("radio", name="Contoso Partners Madrid (1234567)").check()
    ui.button("Siguiente").click()

    ui.heading_focused("¿Cómo quiere identificar al cliente?")
    types = page.get_by_role("group", name="Tipo de identificador de cliente")
    # Variable payment: the MSX opportunity id only (already chosen, being the only one).
    expect(types.get_by_role("radio")).to_have_count(1)
    expect(types.get_by_role("radio", name="Id. de oportunidad de MSX")).to_be_checked()
    ui.axe()
    page.get_by_label("Identificador de cliente", exact=True).fill("7-ABC123XYZ")
    ui.button("Siguiente").click()

    ui.heading_focused("¿A qué interacciones quiere agregar el cliente?")
    # One engagement only: radios, the variable one chosen.
    eligible = page.get_by_role("group", name="Interacciones aptas")
    expect(eligible.get_by_role("checkbox")).to_have_count(0)
    expect(eligible.get_by_role("radio", name=re.compile("AI Accelerate"))).to_be_checked()
    ui.axe()
    ui.button("Siguiente").click()

    ui.heading_focused("¿Cuántas horas llevará la interacción?")
    expect(page.get_by_text("Un número entero de 10 a 200.")).to_be_visible()
    ui.axe()
    page.get_by_label("Horas", exact=True).fill("cien")
    ui.button("Siguiente").click()
    ui.field_error(page.get_by_label("Horas", exact=True), re.compile("número entero"))
    expect(page.get_by_label("Horas", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Horas", exact=True).fill("100")
    ui.button("Siguiente").click()

    ui.heading_focused("¿Quiénes son los contactos de esta reclamación?")
    customer = page.get_by_role("group", name="Contacto del cliente")
    customer.get_by_label("Nombre completo", exact=True).fill("Ana Ruiz")
    customer.get_by_label("Correo electrónico", exact=True).fill("ana@relecloud.example")
    customer.get_by_role("radio", name="Español").check()
    partner = page.get_by_role("group", name="Contacto de su organización")
    partner.get_by_label("Nombre completo", exact=True).fill("Sam Lee")
    partner.get_by_label("Correo electrónico", exact=True).fill("sam@contoso.example")
    ui.button("Siguiente").click()

    ui.heading_focused("Revise sus respuestas antes de agregar el cliente")
    review = ui.review("Revise sus respuestas antes de agregar el cliente")
    # 100 h x 150 USD = 15 000, under the maximum (25 000) and 10 % of the opportunity (18 000).
    expect(review).to_contain_text("15.000,00 US$")
    expect(review).to_contain_text("100 \u00d7 150,00 US$ = 15.000,00 US$")
    expect(review).to_contain_text("10 % de 180.000,00 US$ = 18.000,00 US$")
    expect(review).to_contain_text("las horas por la tarifa por hora")
    ui.axe()
    ui.button("Agregar cliente").click()

    ui.heading_focused("Cliente agregado")
    claims = ui.claims_of(ACCELERATE, name)
    assert len(claims) == 1, claims
    claim = ui.api("GET", f"/claims/{claims[0]['claim_id']}")
    assert claim["hours"] == 100
    assert claim["proposed_payment_usd"] == 15000
    assert claim["customer_contact"]["language"] == "es"


def test_a_double_click_on_add_customer_adds_once(app: Any) -> None:
    from playwright.sync_api import expect

    ui = app(NORTHWIND[0])
    posts: list[str] = []
    ui.page.on(
        "request",
        lambda r: (
            posts.append(r.headers.get("idempotency-key", ""))
            if r.method == "POST" and r.url.endswith("/customers")
            else None
        ),
    )
    name = unique("Wide World")
    fill_to_review(
        ui,
        engagement_id=MIGRATE,
        name=name,
        location="Northwind Consulting Dublin (7654321)",
        identifier=("domain", "wideworldimporters.com"),
        contact_email="kim@wideworldimporters.com",
    )
    ui.axe()
    ui.button("Add customer").dblclick()
    ui.heading_focused("Customer added")
    expect(ui.page.get_by_role("link", name="Azure Migrate assessment")).to_have_count(1)
    assert len(posts) == 1, posts
    assert len(ui.claims_of(MIGRATE, name)) == 1


def test_a_retry_after_a_dropped_answer_adds_once(app: Any) -> None:
    """The first POST /customers reaches the API but its answer is lost; pressing again sends the same key."""
    from playwright.sync_api import expect

    ui = app(ADATUM[0])
    keys: list[str] = []

    def drop_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            route.fetch()  # the API adds the customer...
            route.abort("connectionreset")  # ...and the answer never arrives
        else:
            route.continue_()

    ui.page.route(re.compile(r"/customers$"), drop_first_answer)
    name = unique("Litware")
    fill_to_review(
        ui,
        engagement_id=MIGRATE,
        name=name,
        location="Adatum Services Lisbon (7654322)",
        identifier=("tpid", "100200300"),
        contact_email="lee@litware.com",
    )
    ui.button("Add customer").click()
    ui.error_summary_focused("The service could not be reached")
    assert len(ui.claims_of(MIGRATE, name)) == 1  # it was added; the browser does not know yet
    expect(ui.button("Add customer")).to_be_enabled()
    ui.button("Add customer").click()
    ui.heading_focused("Customer added")
    assert len(keys) == 2, keys
    assert keys[0]
    assert keys[0] == keys[1]
    assert len(ui.claims_of(MIGRATE, name)) == 1


def test_a_step_whose_check_gets_no_answer_says_so_and_keeps_what_was_typed(app: Any) -> None:
    """The connection drops while the identifier is checked (POST /eligibility-checks): the step says so in its
    error summary (not silence), keeps the answer, and Next again goes on once the network is back."""
    from playwright.sync_api import expect

    ui = app(CONTOSO[0])
    page = ui.page
    start_add(ui, engagement_id=MIGRATE, name=unique("Offline"), location="Contoso Partners Madrid (1234567)")
    page.route(re.compile(r"/eligibility-checks$"), lambda route: route.abort("internetdisconnected"))
    choose_identifier(ui, "domain", "fabrikam.com")
    ui.error_summary_focused("The service could not be reached")
    ui.heading_focused_name("How do you want to identify the customer?")
    expect(page.get_by_label("Customer identifier", exact=True)).to_have_value("fabrikam.com")
    ui.axe()

    page.unroute(re.compile(r"/eligibility-checks$"))
    ui.button("Next").click()
    ui.heading_focused("Which engagements do you want to add the customer to?")
    expect(ui.error_summary()).to_have_count(0)


def on_the_identifier_step_on_a_slow_network(app: Any, name: str) -> App:
    """Adatum's partner at Add customer's identifier step; from then on every request waits 1.5 s more."""
    ui = app(ADATUM[0])
    start_add(ui, engagement_id=MIGRATE, name=unique(name), location="Adatum Services Lisbon (7654322)")
    slow_network(ui.page, 1500)
    return ui


def test_back_while_a_slow_check_is_on_its_way_stays_where_the_partner_went(app: Any) -> None:
    """On a slow network the partner presses Next, then Back before the check answers: the answer does not
    pull them forward again; Next from there goes on as usual, with what they typed."""
    from playwright.sync_api import expect

    ui = on_the_identifier_step_on_a_slow_network(app, "Patient")
    page = ui.page
    with page.expect_response(lambda answer: answer.url.endswith("/eligibility-checks")):
        choose_identifier(ui, "tpid", "100200300")
        page.get_by_role("link", name="Back").click()
        ui.heading_focused("Which location is making the claim?")
    page.wait_for_timeout(500)  # what the answer would do, it has done by now
    ui.heading_focused("Which location is making the claim?")
    expect(page.get_by_role("radio", name="Adatum Services Lisbon (7654322)")).to_be_checked()

    ui.button("Next").click()
    ui.heading_focused("How do you want to identify the customer?")
    expect(page.get_by_label("Customer identifier", exact=True)).to_have_value("100200300")


def test_back_then_forward_while_a_slow_check_is_on_its_way_leaves_the_new_page_alone(app: Any) -> None:
    """Next, then Back and Forward to the same step before the check answers: the address is the same again, but
    the page is a new one; the old check's answer neither moves the partner on nor overwrites what they typed."""
    from playwright.sync_api import expect

    ui = on_the_identifier_step_on_a_slow_network(app, "Forward")
    page = ui.page
    with page.expect_response(lambda answer: answer.url.endswith("/eligibility-checks")):
        choose_identifier(ui, "tpid", "100200300")
        page.go_back()
        ui.heading_focused("Which location is making the claim?")
        page.go_forward()
        ui.heading_focused("How do you want to identify the customer?")
        page.get_by_label("Customer identifier", exact=True).fill("100200301")
    page.wait_for_timeout(500)  # what the answer would do, it has done by now
    ui.heading_focused_name("How do you want to identify the customer?")
    expect(page.get_by_label("Customer identifier", exact=True)).to_have_value("100200301")
    page.reload()  # what the run keeps is what was typed last
    expect(page.get_by_label("Customer identifier", exact=True)).to_have_value("100200301")


def test_a_slow_step_says_it_is_in_progress(app: Any) -> None:
    """On a slow network Next on a checked step says, in a polite live region, that it is on its way; the message
    goes once the answer is in (Spanish too: the same region, the catalogue's sentence)."""
    from playwright.sync_api import expect

    ui = app(ADATUM[0], language="es")
    page = ui.page
    ui.open(f"/engagements/{MIGRATE}/add")
    progress = page.get_by_role("status")
    expect(progress).to_have_attribute("aria-live", "polite")
    expect(progress).to_have_text("")
    page.get_by_label("Nombre descriptivo", exact=True).fill(unique("Despacio"))
    page.get_by_role("button", name="Siguiente", exact=True).click()
    page.get_by_role("radio", name="Adatum Services Lisbon (7654322)").check()
    page.get_by_role("button", name="Siguiente", exact=True).click()
    page.get_by_role("group", name="Tipo de identificador de cliente").get_by_role("radio", name="TPID").check()
    page.get_by_label("Identificador de cliente", exact=True).fill("100200300")
    slow_network(page, 1500)
    with page.expect_response(lambda answer: answer.url.endswith("/eligibility-checks")):
        page.get_by_role("button", name="Siguiente", exact=True).click()
        expect(page.get_by_role("status")).to_have_text("En curso, espere, por favor…")
        ui.axe()
    ui.heading_focused_name("¿A qué interacciones quiere agregar el cliente?")
    expect(page.get_by_role("status")).to_have_text("")


def sign_in_again(ui: App) -> None:
    """The sign-in page says the session ended; signing in again (local sign-in: partner and roles) as before."""
    from playwright.sync_api import expect

    page = ui.page
    ui.heading_focused("Sign in")
    expect(page.get_by_role("alert")).to_contain_text("Your session has ended. Sign in again to carry on")
    ui.axe()
    page.get_by_role("radio", name=ui.partner_id).check()
    page.get_by_role("checkbox", name=re.compile("incentives_user")).check()
    page.get_by_role("button", name="Sign in", exact=True).click()


def expire_on_the_identifier_step(app: Any, name: str, tpid: str, lifetime: int = 6) -> tuple[App, str]:
    """Northwind's partner starts Add customer with a token of `lifetime` seconds, types `name` and the TPID, and
    presses Next once the token has expired: the API answers 401. -> the tab, and the run's id."""
    import time

    issued = time.monotonic()
    ui = app(NORTHWIND[0], expires_in=lifetime)
    page = ui.page
    start_add(ui, engagement_id=MIGRATE, name=name, location="Northwind Consulting Dublin (7654321)")
    run = urlsplit(page.url).fragment.split("run=")[1].split("&")[0]
    page.get_by_role("group", name="Customer identifier type").get_by_role("radio", name="TPID", exact=True).check()
    page.get_by_label("Customer identifier", exact=True).fill(tpid)
    time.sleep(max(0.0, lifetime + 1 - (time.monotonic() - issued)))  # the token is now expired
    with page.expect_response(lambda answer: answer.url.endswith("/eligibility-checks")) as refused:
        ui.button("Next").click()
    assert refused.value.status == 401
    return ui, run


def test_a_session_that_expires_mid_wizard_signs_in_again_and_comes_back_with_what_was_typed(app: Any) -> None:
    """The token expires while the partner is on the identifier step: Next (the API answers 401) leads to Sign in,
    which says why, and signing in again comes back to the same step of the same run, with its answers."""
    from playwright.sync_api import expect

    name = unique("Expiring")
    ui, run = expire_on_the_identifier_step(app, name, "100200300")
    page = ui.page
    types = page.get_by_role("group", name="Customer identifier type")

    sign_in_again(ui)
    ui.heading_focused("How do you want to identify the customer?")
    assert f"run={run}" in page.url
    expect(types.get_by_role("radio", name="TPID", exact=True)).to_be_checked()
    expect(page.get_by_label("Customer identifier", exact=True)).to_have_value("100200300")
    ui.button("Next").click()
    ui.heading_focused("Which engagements do you want to add the customer to?")
    page.get_by_role("link", name="Back").click()
    page.get_by_role("link", name="Back").click()
    page.get_by_role("link", name="Back").click()
    expect(page.get_by_label("Friendly name", exact=True)).to_have_value(name)


def test_an_expired_session_on_opening_a_page_signs_in_and_opens_that_page(app: Any) -> None:
    """A link or a reload with an expired session: Sign in says so, and then the page asked for opens."""
    from playwright.sync_api import expect

    ui = app(CONTOSO[0], expires_in=-60)
    ui.page.goto(f"{ui.stack.url}/app/#/engagements/{MIGRATE}/customers?tab=complete")
    sign_in_again(ui)
    ui.heading_focused("Azure Migrate assessment")
    expect(ui.page.get_by_role("tab", name="Complete", exact=True)).to_have_attribute("aria-selected", "true")


def wizard_storage(ui: App) -> str:
    """Everything this tab keeps in sessionStorage but the session itself (wizard runs, drafts), as one JSON text."""
    return str(
        ui.page.evaluate("JSON.stringify(Object.entries(sessionStorage).filter(([key]) => key !== 'mci.session'))")
    )


def test_a_session_that_expires_mid_wizard_then_another_partner_signs_in_sees_an_empty_wizard(app: Any) -> None:
    """Partner A's token expires mid-wizard; partner B signs in on that tab and is sent (`next`) to A's run: B gets
    a new, empty run of the wizard, and A's answers are gone from the tab's storage (not shown, not committable)."""
    from playwright.sync_api import expect

    name = unique("Secret")
    ui, run = expire_on_the_identifier_step(app, name, "918273645", lifetime=5)
    page = ui.page
    stored = wizard_storage(ui)
    assert name in stored  # A's answers are kept for A...
    assert "918273645" in stored

    ui.partner_id = CONTOSO[0]  # someone else signs in on this tab
    sign_in_again(ui)
    ui.heading_focused("What friendly name do you want to give this claim?")
    expect(page.get_by_label("Friendly name", exact=True)).to_have_value("")
    assert f"run={run}" not in page.url
    stored = wizard_storage(ui)
    assert name not in stored
    assert "918273645" not in stored
    assert run not in stored
    # B's own run works as usual: the locations offered are B's.
    page.get_by_label("Friendly name", exact=True).fill(unique("Mine"))
    ui.button("Next").click()
    expect(page.get_by_role("radio", name="Contoso Partners Madrid (1234567)")).to_be_visible()


def test_sign_out_forgets_the_wizard_runs_of_the_tab(app: Any) -> None:
    """What was typed in a wizard is the signed-in partner's: Sign out removes it from the tab's storage."""
    from playwright.sync_api import expect

    ui = app(ADATUM[0])
    page = ui.page
    name = unique("Forgotten")
    start_add(ui, engagement_id=MIGRATE, name=name, location="Adatum Services Lisbon (7654322)")
    assert name in wizard_storage(ui)
    page.get_by_role("button", name="Sign out", exact=True).click()
    ui.heading_focused("Sign in")
    expect(page.get_by_role("radio", name=ADATUM[0])).to_be_visible()
    assert wizard_storage(ui) == "[]"


def test_sign_out_removes_the_wizard_runs_older_code_saved(app: Any) -> None:
    """Runs saved by older code under `mci.wizard.` are never read back: Sign out removes them with the drafts."""
    ui = app(ADATUM[0])
    page = ui.page
    name = unique("Older")
    ui.open(f"/engagements/{MIGRATE}/add")
    page.evaluate(f"sessionStorage.setItem('mci.wizard.add.old-run', {json.dumps(json.dumps({'name': name}))})")
    assert name in wizard_storage(ui)
    page.get_by_role("button", name="Sign out", exact=True).click()
    ui.heading_focused("Sign in")
    assert wizard_storage(ui) == "[]"


def new_customer_domain(ui: App) -> str:
    """A customer of its own (reference data: an SMB tenant in Spain and its domain), so no limit is shared."""
    tenant = str(uuid.uuid4())
    ui.stack.seed(
        {
            "customers": [
                {
                    "identifier_type": "tenant_id",
                    "value": tenant,
                    "name": f"Customer {tenant[:8]}",
                    "segment": "SMB",
                    "country": "ES",
                    "cosell_allowed": True,
                    "opportunity_value_usd": None,
                }
            ],
            "domains": [{"domain": f"c{tenant[:8]}.example.com", "tenant_id": tenant}],
        }
    )
    return f"c{tenant[:8]}.example.com"


def assert_no_sideways_scroll(ui: App, screen: str) -> None:
    """WCAG 1.4.10 reflow: at 320 CSS pixels (1280 px at 400 %) nothing needs scrolling sideways."""
    widths = ui.page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"{screen}: the page is {widths[0]} px wide in a {widths[1]} px window"


def test_a_long_unbroken_name_reflows_at_320_css_pixels(app: Any) -> None:
    """A friendly name without spaces (a project code, up to 100 characters) and a long email address wrap at
    320 px on every screen that shows them: review, confirmation, claim details, the Customers page."""
    from playwright.sync_api import expect

    ui = app(ADATUM[0], viewport={"width": 320, "height": 640})
    page = ui.page
    name = f"FabrikamRetailCloudMigrationPhaseTwoEMEA{uuid.uuid4().hex[:6]}"
    domain = new_customer_domain(ui)
    fill_to_review(
        ui,
        engagement_id=MIGRATE,
        name=name,
        location="Adatum Services Lisbon (7654322)",
        identifier=("domain", domain),
        contact_email=f"maria.fernandez-de-la-fuente.procurement@{domain}",
    )
    assert_no_sideways_scroll(ui, "review")
    ui.button("Add customer").click()
    ui.heading_focused("Customer added")
    expect(page.get_by_role("main")).to_contain_text(name)
    assert_no_sideways_scroll(ui, "confirmation")
    page.get_by_role("link", name="Azure Migrate assessment").click()
    ui.heading_focused(name)
    assert_no_sideways_scroll(ui, "claim details")
    ui.open(f"/engagements/{MIGRATE}/customers")
    expect(page.get_by_role("tabpanel").get_by_role("link", name=name, exact=True)).to_be_visible()
    assert_no_sideways_scroll(ui, "customers page")
    ui.axe()


def test_api_problems_show_beside_their_field(app: Any, client: StackClient) -> None:
    """A malformed domain beside the identifier; a limit reached meanwhile beside the engagements."""
    from playwright.sync_api import expect

    ui = app(ADATUM[0])
    page = ui.page
    name = unique("Tailspin")
    start_add(ui, engagement_id=SECURITY, name=name, location="Adatum Services Lisbon (7654322)")
    choose_identifier(ui, "domain", "not a domain!")
    ui.error_summary_focused("There is a problem")
    value = page.get_by_label("Customer identifier", exact=True)
    expect(value).to_have_attribute("aria-invalid", "true")
    ui.field_error(value, "Error: This is not a valid identifier of the chosen type.")
    ui.axe()
    ui.error_summary().get_by_role("link").first.click()
    expect(value).to_be_focused()

    value.fill("tailspintoys.com")
    ui.button("Next").click()
    ui.heading_focused("Which engagements do you want to add the customer to?")
    expect(ui.error_summary()).to_have_count(0)
    expect(page.get_by_role("checkbox", name=re.compile("Security workshop"))).to_be_checked()
    ui.button("Next").click()
    fill_contacts(ui, "Jo Park", "jo@tailspintoys.com", "sam@adatum.example")
    ui.heading_focused("Check your answers before adding the customer")

    # Meanwhile another partner claims the customer: the engagement's limit (1 active claim) is reached.
    other = client.token(NORTHWIND[0], CLAIM_ROLES)
    taken = client.request(
        "POST",
        "/customers",
        {
            "friendly_name": "Tailspin (Northwind)",
            "location_id": NORTHWIND[1],
            "identifier": {"type": "domain", "value": "tailspintoys.com"},
            "engagement_ids": [SECURITY],
            "customer_contact": {"name": "Jo Park", "email": "jo@tailspintoys.com"},
            "partner_contact": {"name": "Ann", "email": "ann@northwind.example"},
        },
        token=other,
    )
    assert taken.status == 201, taken.text
    ui.button("Add customer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Which engagements do you want to add the customer to?")
    ui.error_summary_focused("reached the limit of active claims")
    ui.field_error(page.get_by_role("group", name="Eligible engagements"), "reached the limit of active claims")
    ui.axe()
    assert ui.claims_of(SECURITY, name) == []


# --- Consent, Claim customer, and the whole story -----------------------------------------------------


def consent_link(client: StackClient, email: str) -> str:
    """The consent link of the newest email to `email` in the local mailbox."""
    mailbox = client.request("GET", "/_local/mailbox.json")
    assert mailbox.status == 200, mailbox.text
    for item in mailbox.json()["items"]:
        if item["to"] == email or email in item["to"]:
            found = re.search(r"https?://[^\s\"'<>]+/consent/[A-Za-z0-9_-]+", item["text"] or item["html"])
            if found:
                return found.group(0)
    pytest.fail(f"no consent email to {email}")


def accept_consent(ui: App, email: str, button: str = "I give my consent") -> None:
    from playwright.sync_api import expect

    link = consent_link(ui.client, email)
    ui.page.goto(f"{ui.stack.url}{urlsplit(link).path}")
    ui.page.get_by_role("button", name=button, exact=True).click()
    expect(ui.page.get_by_role("heading", level=1)).to_contain_text(re.compile("Thank you|Gracias"))


def test_claim_customer_end_to_end(app: Any) -> None:
    """A known customer (consent granted earlier) claimed for another engagement, contacts pre-filled."""
    from playwright.sync_api import expect

    ui = app(CONTOSO[0])
    page = ui.page
    tenant = "5f1c2a3b-0000-4000-8000-000000000003"
    email = f"mia.{uuid.uuid4().hex[:6]}@wideworldimporters.com"
    added = ui.api(
        "POST",
        "/customers",
        {
            "friendly_name": "Wide World (security)",
            "location_id": CONTOSO[1],
            "identifier": {"type": "tenant_id", "value": tenant},
            "engagement_ids": [SECURITY],
            "customer_contact": {"name": "Mia Chen", "email": email, "language": "en"},
            "partner_contact": {"name": "Sam Lee", "email": "sam@contoso.example"},
        },
    )
    first_claim = added["claims"][0]["claim_id"]
    ui.api("POST", f"/claims/{first_claim}/consent-requests", {"deal_size_usd": 5000, "disclaimer_accepted": True})
    accept_consent(ui, email)
    known = [item for item in ui.api("GET", "/known-customers")["items"] if item["identifier"]["value"] == tenant]
    assert len(known) == 1, known
    customer_id = known[0]["customer_id"]

    name = unique("Wide World")
    ui.open(f"/engagements/{MIGRATE}/claim/{customer_id}")
    ui.heading_focused("What friendly name do you want to give this claim?")
    expect(page.get_by_text("Claim customer", exact=True)).to_be_visible()
    ui.axe()
    page.get_by_label("Friendly name", exact=True).fill(name)
    ui.button("Next").click()
    ui.heading_focused("Which location is making the claim?")
    ui.axe()
    page.get_by_role("radio", name="Contoso Partners Madrid (1234567)").check()
    ui.button("Next").click()
    ui.heading_focused("Which engagements do you want to add the customer to?")
    expect(page.get_by_role("checkbox", name=re.compile("Azure Migrate"))).to_be_checked()
    ui.axe()
    ui.button("Next").click()
    ui.heading_focused("Who are the contacts for this claim?")
    customer = page.get_by_role("group", name="Customer contact")
    expect(customer.get_by_label("Full name", exact=True)).to_have_value("Mia Chen")
    expect(customer.get_by_label("Email address", exact=True)).to_have_value(email)
    expect(
        page.get_by_role("group", name="Your organisation's contact").get_by_label("Full name", exact=True)
    ).to_have_value("Sam Lee")
    ui.axe()
    customer.get_by_label("Phone number (optional)", exact=True).fill("+34 600 000 000")
    ui.button("Next").click()
    ui.heading_focused("Check your answers before adding the customer")
    expect(ui.review()).to_contain_text("+34 600 000 000")
    ui.axe()
    ui.button("Claim customer").click()
    ui.heading_focused("Customer claimed")
    ui.axe()
    claims = ui.claims_of(MIGRATE, name)
    assert len(claims) == 1, claims
    claim = ui.api("GET", f"/claims/{claims[0]['claim_id']}")
    assert claim["origin"] == "claimed"
    assert claim["customer_contact"]["phone"] == "+34 600 000 000"


def test_claim_customer_for_a_variable_payment_engagement_asks_hours_and_shows_the_quote(app: Any) -> None:
    """Issue 14 item 3: a known MSX opportunity claimed again for the variable-payment engagement, once its
    first claim there is complete: one engagement, the hours, the proposed payment and breakdown on review."""
    from playwright.sync_api import expect

    ui = app(CONTOSO[0])
    page = ui.page
    opportunity = f"7-{uuid.uuid4().hex[:10].upper()}"
    ui.stack.seed(
        {
            "customers": [
                {
                    "identifier_type": "msx_opportunity_id",
                    "value": opportunity,
                    "name": "Lamna expansion",
                    "segment": "ENT",
                    "country": "US",
                    "cosell_allowed": True,
                    "opportunity_value_usd": 300000,
                }
            ]
        }
    )
    email = f"lee.{uuid.uuid4().hex[:6]}@lamna.example"
    first = ui.api(
        "POST",
        "/customers",
        {
            "friendly_name": "Lamna (first)",
            "location_id": CONTOSO[1],
            "identifier": {"type": "msx_opportunity_id", "value": opportunity},
            "engagement_ids": [ACCELERATE],
            "hours": 20,
            "customer_contact": {"name": "Lee Park", "email": email, "language": "en"},
            "partner_contact": {"name": "Sam Lee", "email": "sam@contoso.example"},
        },
    )["claims"][0]["claim_id"]
    ui.api("POST", f"/claims/{first}/consent-requests", {"deal_size_usd": 5000, "disclaimer_accepted": True})
    accept_consent(ui, email)
    ui.api("POST", f"/claims/{first}/submission", {"notes": "delivered"})
    ops = ui.client.token("mci-operations", ["mci_operations"])
    reviewed = ui.client.request(
        "POST", f"/ops/claims/{first}/review", {"decision": "complete", "reason": "ok"}, token=ops
    )
    assert reviewed.status == 200, reviewed.text
    known = [item for item in ui.api("GET", "/known-customers")["items"] if item["identifier"]["value"] == opportunity]
    assert len(known) == 1, known

    name = unique("Lamna")
    ui.open(f"/engagements/{ACCELERATE}/claim/{known[0]['customer_id']}")
    ui.heading_focused("What friendly name do you want to give this claim?")
    page.get_by_label("Friendly name", exact=True).fill(name)
    ui.button("Next").click()
    page.get_by_role("radio", name="Contoso Partners Madrid (1234567)").check()
    ui.button("Next").click()

    ui.heading_focused("Which engagements do you want to add the customer to?")
    eligible = page.get_by_role("group", name="Eligible engagements")
    expect(eligible.get_by_role("checkbox")).to_have_count(0)  # variable payment: one engagement only
    expect(eligible.get_by_role("radio", name=re.compile("AI Accelerate"))).to_be_checked()
    ui.axe()
    ui.button("Next").click()

    ui.heading_focused("How many hours will the engagement take?")
    ui.axe()
    page.get_by_label("Hours", exact=True).fill("40")
    ui.button("Next").click()
    ui.heading_focused("Who are the contacts for this claim?")
    expect(page.get_by_role("group", name="Customer contact").get_by_label("Email address", exact=True)).to_have_value(
        email
    )
    ui.button("Next").click()

    ui.heading_focused("Check your answers before adding the customer")
    review = page.get_by_role("main")
    # 40 h x 150 USD = 6 000, under the maximum (25 000) and 10 % of the opportunity (30 000).
    expect(review).to_contain_text("$6,000.00")
    expect(review).to_contain_text("40 \u00d7 $150.00 = $6,000.00")
    expect(review).to_contain_text("10 % of $300,000.00 = $30,000.00")
    ui.axe()
    with page.expect_request(lambda request: request.method == "POST" and "/claims" in request.url) as sent:
        ui.button("Claim customer").click()
    ui.heading_focused("Customer claimed")
    assert json.loads(sent.value.post_data)["hours"] == 40
    claims = [claim for claim in ui.claims_of(ACCELERATE, name) if claim["friendly_name"] == name]
    assert len(claims) == 1, claims
    claim = ui.api("GET", f"/claims/{claims[0]['claim_id']}")
    assert (claim["origin"], claim["hours"], claim["proposed_payment_usd"]) == ("claimed", 40, 6000)


def test_the_whole_story_add_consent_accept_submit_complete(app: Any, client: StackClient) -> None:
    """Add, send consent (errors beside their fields), resend refused, accept, submit, operations complete it."""
    from playwright.sync_api import expect

    ui = app(CONTOSO[0])
    page = ui.page
    name = unique("Proseware")
    email = f"noa.{uuid.uuid4().hex[:6]}@proseware.example"
    fill_to_review(
        ui,
        engagement_id=SECURITY,
        name=name,
        location="Contoso Partners Madrid (1234567)",
        identifier=("subscription_id", "9a8b7c6d-0000-4000-8000-00000000000a"),
        contact_email=email,
    )
    ui.button("Add customer").click()
    ui.heading_focused("Customer added")
    page.get_by_role("link", name="Security workshop").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)

    # Send customer consent email: contacts (pre-filled), deal size, disclaimer, send.
    page.get_by_role("button", name="Send customer consent email").click()
    ui.heading_focused("Who are the contacts for this claim?")
    expect(page.get_by_text("Send customer consent email", exact=True)).to_be_visible()
    expect(page.get_by_role("group", name="Customer contact").get_by_label("Email address", exact=True)).to_have_value(
        email
    )
    ui.axe()
    ui.button("Next").click()
    ui.heading_focused("What is the estimated deal size?")
    page.get_by_label("Estimated deal size (USD)", exact=True).fill("lots")
    ui.button("Next").click()
    ui.error_summary_focused("There is a problem")
    ui.field_error(page.get_by_label("Estimated deal size (USD)", exact=True), "amount in US dollars")
    ui.axe()
    page.get_by_label("Estimated deal size (USD)", exact=True).fill("25000")
    ui.button("Next").click()
    ui.heading_focused("Check the details and send the consent email")
    consent_review = ui.review("Check the details and send the consent email")
    expect(consent_review).to_contain_text("$25,000.00")
    ui.button("Send customer consent email").click()
    ui.field_error(page.get_by_role("group", name=DISCLAIMER_LEGEND), "Accept the disclaimer")
    ui.axe()
    page.get_by_role("checkbox", name="I accept the disclaimer").check()
    ui.button("Send customer consent email").click()
    ui.heading_focused("Consent email sent")
    ui.axe()
    claim_id = page.get_by_role("link", name="Back to the claim details").get_attribute("href").split("/")[-1]
    assert ui.api("GET", f"/claims/{claim_id}")["state"] == "consent_requested"

    # Resend: the page says how many resends remain and when the next is allowed; too soon is refused.
    ui.open(f"/claims/{claim_id}/consent")
    expect(page.get_by_text("Resend customer consent email", exact=True)).to_be_visible()
    info = page.get_by_role("note").filter(has_text="resends left")
    expect(info).to_contain_text("You have 5 resends left for this claim.")
    expect(info).to_contain_text("The next resend is allowed from")
    ui.button("Next").click()
    ui.heading_focused("Check the details and send the consent email")
    expect(consent_review).to_contain_text("locked")
    expect(page.get_by_role("note").filter(has_text="resends left")).to_contain_text("5 resends left")
    ui.axe()
    page.get_by_role("checkbox", name="I accept the disclaimer").check()
    ui.button("Resend customer consent email").click()
    ui.error_summary_focused("at most once an hour")

    # The customer accepts from the email; the partner submits; operations complete it.
    accept_consent(ui, email)
    ui.open(f"/claims/{claim_id}")
    page.get_by_role("button", name="Submit claim").click()
    expect(page.get_by_text("The claim was submitted.")).to_be_visible()
    ops = client.token("mci-operations", ["mci_operations"])
    reviewed = client.request(
        "POST", f"/ops/claims/{claim_id}/review", {"decision": "complete", "reason": "Work verified"}, token=ops
    )
    assert reviewed.status == 200, reviewed.text
    page.goto(f"{ui.stack.url}/app/#/engagements/{SECURITY}/customers?tab=complete")
    expect(page.get_by_role("tab", name="Complete")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel").get_by_role("link", name=name)).to_be_visible()


def test_api_field_errors_show_in_spanish_beside_their_field(app: Any) -> None:
    """Issue 14 item 2: a malformed domain refused by the API (errors[] with a code) reads in Spanish."""
    from playwright.sync_api import expect

    ui = app(CONTOSO[0], "es")
    page = ui.page
    ui.open(f"/engagements/{MIGRATE}/add")
    page.get_by_label("Nombre descriptivo", exact=True).fill(unique("Dominio roto"))
    ui.button("Siguiente").click()
    page.get_by_role("radio", name="Contoso Partners Madrid (1234567)").check()
    ui.button("Siguiente").click()
    ui.heading_focused("¿Cómo quiere identificar al cliente?")
    page.get_by_role("group", name="Tipo de identificador de cliente").get_by_role("radio", name="Dominio").check()
    value = page.get_by_label("Identificador de cliente", exact=True)
    value.fill("esto no es un dominio!")
    with page.expect_response(lambda answer: answer.url.endswith("/eligibility-checks")) as refused:
        ui.button("Siguiente").click()

    problem = refused.value.json()
    assert [(error["field"], error["code"]) for error in problem["errors"]] == [("identifier.value", "invalid")]
    sentence = "No es un identificador válido del tipo elegido."
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Hay un problema")
    expect(summary.get_by_role("link", name=f"Identificador de cliente: {sentence}")).to_be_visible()
    expect(value).to_have_attribute("aria-invalid", "true")
    expect(value).to_have_accessible_description(re.compile(re.escape(f"Error: {sentence}")))
    expect(page.get_by_role("main")).not_to_contain_text(problem["errors"][0]["message"])  # not the API's English
    ui.axe()


def test_a_tenant_id_not_matching_the_email_domain_asks_for_the_reason(app: Any) -> None:
    """Rule 4: after the contacts, a tenant id of another domain's customer asks why (one more question page)."""
    from playwright.sync_api import expect

    ui = app(NORTHWIND[0])
    page = ui.page
    name = unique("Fabrikam tenant")
    start_add(ui, engagement_id=MIGRATE, name=name, location="Northwind Consulting Dublin (7654321)")
    choose_identifier(ui, "tenant_id", "5F1C2A3B-0000-4000-8000-000000000001")
    ui.heading_focused("Which engagements do you want to add the customer to?")
    ui.button("Next").click()
    fill_contacts(ui, "Pat Diaz", "pat@tailspintoys.com", "ann@northwind.example")

    ui.heading_focused("Why does the tenant ID not match the customer's email domain?")
    ui.axe()
    ui.button("Next").click()
    ui.field_error(page.get_by_label("Reason for the tenant mismatch", exact=True), "Enter the reason")
    page.get_by_label("Reason for the tenant mismatch", exact=True).fill(
        "The customer buys through its parent's tenant."
    )
    ui.button("Next").click()
    ui.heading_focused("Check your answers before adding the customer")
    expect(ui.review()).to_contain_text("parent's tenant")
    ui.button("Add customer").click()
    ui.heading_focused("Customer added")
    claims = ui.claims_of(MIGRATE, name)
    assert len(claims) == 1, claims
    claim = ui.api("GET", f"/claims/{claims[0]['claim_id']}")
    assert claim["tenant_mismatch_reason"] == "The customer buys through its parent's tenant."
