"""Render emails from the template files beside this module (HTML values escaped)."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from string import Template

from mci.domain.text import one_line

LANGUAGES = ("en", "es")
_MONTHS = {
    "en": [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ],
    "es": [
        "enero", "febrero", "marzo", "abril", "mayo", "junio",
        "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
    ],
}  # fmt: skip

SUBJECTS = {
    ("consent_request", "en"): "$partner_name asks for your consent: $engagement_name",
    ("consent_request", "es"): "$partner_name solicita su consentimiento: $engagement_name",
    ("consent_accepted", "en"): "Consent granted for $friendly_name ($engagement_name)",
    ("consent_declined", "en"): "Consent declined for $friendly_name ($engagement_name)",
    ("consent_reminder", "en"): "Reminder: consent for $friendly_name is due by $deadline",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    version: str  # kind, language and a digest of the template files: which exact text was sent


def long_date(at: datetime, language: str) -> str:
    """'27 December 2026' / '27 de diciembre de 2026' (UTC)."""
    month = _MONTHS[language][at.month - 1]
    if language == "es":
        return f"{at.day} de {month} de {at.year}"
    return f"{at.day} {month} {at.year}"


@cache
def _template(name: str) -> Template:
    return Template(resources.files("mci.emails").joinpath("templates", name).read_text(encoding="utf-8"))


@cache
def _digest(kind: str, language: str) -> str:
    parts = [SUBJECTS[(kind, language)], *(_template(f"{kind}.{language}.{ext}").template for ext in ("txt", "html"))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def load_templates() -> None:
    """Read and digest every template now (SnapStart priming, mci.snapstart), not at the first email."""
    for kind, language in SUBJECTS:
        _digest(kind, language)


def render(kind: str, language: str, values: dict[str, str]) -> Rendered:
    language = language if language in LANGUAGES else "en"
    if (kind, language) not in SUBJECTS:
        language = "en"
    escaped = {name: html.escape(value, quote=True) for name, value in values.items()}
    return Rendered(
        version=f"{kind}.{language}@{_digest(kind, language)}",
        # a subject is one header line whatever the values hold: a CR LF there would start another header
        subject=one_line(Template(SUBJECTS[(kind, language)]).substitute(values)),
        text=_template(f"{kind}.{language}.txt").substitute(values),
        html=_template(f"{kind}.{language}.html").substitute(escaped),
    )
