"""The emails the service writes (rules 13 and 16): both languages, long dates, HTML escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from mci.emails.render import long_date, render
from tests.support.reference import NOW

DEADLINE = NOW + timedelta(days=30)  # 27 December 2026
LINK = "https://consent.example/consent/" + "A" * 43
SCRIPT = "<script>alert(1)</script>"


def consent_values(**overrides: str) -> dict[str, str]:
    values = {
        "customer_name": "Ana García",
        "partner_name": "Contoso Partners Madrid",
        "friendly_name": "Fabrikam migration",
        "engagement_name": "Azure Migrate assessment",
        "deadline": long_date(DEADLINE, "es"),
        "link": LINK,
        "partner_contact_name": "Sam Lee",
        "partner_contact_email": "sam@contoso-partners.com",
    }
    values.update(overrides)
    return values


def decision_values(**overrides: str) -> dict[str, str]:
    values = {
        "partner_contact_name": "Sam Lee",
        "friendly_name": "Fabrikam migration",
        "engagement_name": "Azure Migrate assessment",
        "decided_on": long_date(NOW, "en"),
        "submission_deadline": long_date(NOW + timedelta(days=90), "en"),
        "claim_id": "c-1",
    }
    values.update(overrides)
    return values


def test_long_dates_in_english_and_spanish() -> None:
    assert long_date(DEADLINE, "en") == "27 December 2026"
    assert long_date(DEADLINE, "es") == "27 de diciembre de 2026"
    assert long_date(datetime(2027, 1, 1, 23, 59, tzinfo=UTC), "es") == "1 de enero de 2027"


@pytest.mark.parametrize(
    ("month", "english", "spanish"),
    [(1, "January", "enero"), (5, "May", "mayo"), (9, "September", "septiembre"), (12, "December", "diciembre")],
)
def test_every_month_has_its_name(month: int, english: str, spanish: str) -> None:
    at = datetime(2027, month, 3, tzinfo=UTC)
    assert long_date(at, "en") == f"3 {english} 2027"
    assert long_date(at, "es") == f"3 de {spanish} de 2027"


def test_the_spanish_consent_request_names_partner_engagement_agreement_deadline_and_link() -> None:
    email = render("consent_request", "es", consent_values())
    assert email.subject == "Contoso Partners Madrid solicita su consentimiento: Azure Migrate assessment"
    for body in (email.text, email.html):
        assert "Hola, Ana García" in body
        assert "Contoso Partners Madrid" in body
        assert "Azure Migrate assessment" in body
        assert "Lo que acepta" in body
        assert "27 de diciembre de 2026" in body
        assert LINK in body
    assert '<html lang="es">' in email.html
    assert f'href="{LINK}"' in email.html


def test_the_english_consent_request() -> None:
    email = render("consent_request", "en", consent_values(deadline=long_date(DEADLINE, "en")))
    assert email.subject == "Contoso Partners Madrid asks for your consent: Azure Migrate assessment"
    for body in (email.text, email.html):
        assert "Hello Ana García" in body
        assert "What you agree to" in body
        assert "27 December 2026" in body
        assert LINK in body
    assert '<html lang="en">' in email.html


def test_an_unknown_language_falls_back_to_english() -> None:
    assert render("consent_request", "fr", consent_values()).subject.endswith(
        "asks for your consent: Azure Migrate assessment"
    )


@pytest.mark.parametrize("kind", ["consent_accepted", "consent_declined"])
def test_partner_notices_are_in_english_whatever_the_language(kind: str) -> None:
    english = render(kind, "en", decision_values())
    assert render(kind, "es", decision_values()) == english
    assert "Fabrikam migration" in english.subject
    assert "Hello Sam Lee" in english.text
    assert "c-1" in english.html


def test_decision_notices_say_which_decision() -> None:
    accepted = render("consent_accepted", "en", decision_values())
    declined = render("consent_declined", "en", decision_values())
    assert accepted.subject == "Consent granted for Fabrikam migration (Azure Migrate assessment)"
    assert declined.subject == "Consent declined for Fabrikam migration (Azure Migrate assessment)"
    assert "granted consent" in accepted.text
    assert "submit the claim before " + long_date(NOW + timedelta(days=90), "en") in accepted.text
    assert "declined consent" in declined.text


@pytest.mark.parametrize(
    ("kind", "language"),
    [("consent_request", "en"), ("consent_request", "es"), ("consent_accepted", "en"), ("consent_declined", "en")],
)
def test_every_placeholder_is_filled(kind: str, language: str) -> None:
    values = consent_values() if kind == "consent_request" else decision_values()
    email = render(kind, language, values)
    for part in (email.subject, email.text, email.html):
        assert not re.search(r"\$\{?[A-Za-z_]", part), part


@pytest.mark.parametrize("language", ["en", "es"])
def test_names_are_escaped_in_html(language: str) -> None:
    hostile = consent_values(
        customer_name=SCRIPT,
        friendly_name=f'{SCRIPT} "Fabrikam"',
        partner_name=f"<b>Contoso</b> {SCRIPT}",
        engagement_name=SCRIPT,
    )
    email = render("consent_request", language, hostile)
    assert "<script" not in email.html.lower()
    assert "<b>Contoso" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "&quot;Fabrikam&quot;" in email.html
    # Plain text is not HTML: it shows the name as typed.
    assert SCRIPT in email.text


def test_partner_notices_escape_names_in_html() -> None:
    email = render("consent_declined", "en", decision_values(friendly_name=SCRIPT, partner_contact_name=SCRIPT))
    assert "<script" not in email.html.lower()
    assert email.html.count("&lt;script&gt;") == 2


@pytest.mark.parametrize("kind", ["consent_request", "consent_accepted", "consent_declined", "consent_reminder"])
def test_a_subject_is_one_line_whatever_the_values_hold(kind: str) -> None:
    """Defence in depth behind rule 28: a line break in a value never starts a second header."""
    evil = "Evil\r\nBcc: a@evil.example\u2028\x85"
    values = {
        **consent_values(),
        "state": "consent_requested",
        **decision_values(),
        "deadline": "27 December 2026",
        "friendly_name": evil,
        "partner_name": evil,
        "engagement_name": evil,
    }
    subject = render(kind, "en", values).subject
    assert "Bcc: a@evil.example" in subject
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", subject), repr(subject)
