"""The public consent pages (rule 15): strict headers, no external resources, escaping, one neutral page."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta

import pytest

from mci.domain.claims import Decision
from mci.domain.consent_decision import GONE, ConsentPage, PageStatus
from mci.domain.ports import ConsentPageContext
from mci.http.consent_pages import HEADERS, STYLE, gone_page, render
from tests.support.reference import NOW

DEADLINE = NOW + timedelta(days=30)
SCRIPT = "<script>alert(1)</script>"
URL = re.compile(r"(?i)(?:https?:)?//[a-z0-9]")


def context(language: str = "es", **overrides: object) -> ConsentPageContext:
    values: dict[str, object] = {
        "language": language,
        "partner_name": "Contoso Partners Madrid",
        "engagement_name": "Azure Migrate assessment",
        "customer_name": "Fabrikam migration",
        "submission_window_days": 90,
    }
    values.update(overrides)
    return ConsentPageContext(**values)  # type: ignore[arg-type]


def open_page(language: str = "es", decision: Decision | None = None, **overrides: object) -> str:
    return render(
        ConsentPage(
            PageStatus.OPEN,
            page=context(language, **overrides),
            deadline=DEADLINE,
            friendly_name="Fabrikam migration",
            decision=decision,
        )
    )


def every_page() -> list[str]:
    return [
        open_page("en"),
        open_page("es"),
        *(open_page(lang, decision) for lang in ("en", "es") for decision in Decision),
        render(GONE),
    ]


def test_headers_forbid_caching_referrers_framing_and_every_external_resource() -> None:
    assert HEADERS["Cache-Control"] == "no-store"
    assert HEADERS["Referrer-Policy"] == "no-referrer"
    assert HEADERS["Content-Type"] == "text/html; charset=utf-8"
    csp = [d.strip() for d in HEADERS["Content-Security-Policy"].split(";")]
    assert csp[0] == "default-src 'none'"
    assert "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert not URL.search(HEADERS["Content-Security-Policy"])


def test_the_inline_style_is_the_one_the_policy_allows() -> None:
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in HEADERS["Content-Security-Policy"]
    for page in every_page():
        styles = re.findall(r"<style>(.*?)</style>", page, re.S)
        assert styles == [STYLE]


def test_no_page_loads_or_links_anything_external() -> None:
    for page in every_page():
        assert not URL.search(page), page
        assert "<script" not in page.lower()
        assert "<link" not in page.lower()
        assert "src=" not in page.lower()
        assert "<img" not in page.lower()


def test_the_spanish_page_asks_for_an_answer_with_two_buttons() -> None:
    page = open_page("es")
    assert '<html lang="es">' in page
    assert "Contoso Partners Madrid" in page
    assert "Azure Migrate assessment" in page
    assert "Fabrikam migration" in page
    assert "27 de diciembre de 2026" in page
    assert '<form method="post" action="">' in page
    assert '<button type="submit" class="accept" name="decision" value="accept">Doy mi consentimiento</button>' in page
    assert '<button type="submit" class="decline" name="decision" value="decline">No doy mi consentimiento' in page


def test_the_english_page() -> None:
    page = open_page("en")
    assert '<html lang="en">' in page
    assert "27 December 2026" in page
    assert ">I give my consent</button>" in page
    assert ">I do not consent</button>" in page


def test_an_unknown_language_shows_the_english_page() -> None:
    assert open_page("fr").replace('lang="fr"', 'lang="en"') == open_page("en")


@pytest.mark.parametrize(
    ("language", "decision", "title"),
    [
        ("en", Decision.ACCEPT, "Thank you: your consent is recorded"),
        ("en", Decision.DECLINE, "Your answer is recorded"),
        ("es", Decision.ACCEPT, "Gracias: su consentimiento ha quedado registrado"),
        ("es", Decision.DECLINE, "Su respuesta ha quedado registrada"),
    ],
)
def test_after_a_decision_the_page_confirms_it_without_buttons(language: str, decision: Decision, title: str) -> None:
    page = open_page(language, decision)
    assert f"<h1>{title}</h1>" in page
    assert "<form" not in page
    assert "<button" not in page


@pytest.mark.parametrize("language", ["en", "es"])
def test_names_are_escaped(language: str) -> None:
    page = open_page(
        language,
        partner_name=f"{SCRIPT} Contoso",
        customer_name=f'"><img src=x onerror=alert(1)> {SCRIPT}',
        engagement_name=SCRIPT,
    )
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    decided = open_page(language, Decision.ACCEPT, partner_name=SCRIPT)
    assert "<script" not in decided.lower()


def test_the_neutral_page_is_one_fixed_document_that_names_nothing() -> None:
    assert render(GONE) == gone_page()
    assert render(ConsentPage(PageStatus.OPEN, page=None, deadline=DEADLINE)) == gone_page()
    assert render(ConsentPage(PageStatus.OPEN, page=context(), deadline=None)) == gone_page()
    page = gone_page()
    for revealing in ("Contoso", "Fabrikam", "Azure", "2026", "<form", "<button"):
        assert revealing not in page
    assert "This link is not valid" in page
    assert "Este enlace no es válido" in page
