"""Issue 14: the web app's string catalogues (web/i18n/*.json), one per language, hold the same keys, and
every key the modules in web/js use (literally, through a prefix, or as a plural) exists in each."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mci.domain.attention import AttentionReason
from mci.domain.claims import ClaimState, Decision, EmailStatus, Origin
from mci.domain.customers_page import Action, Tab
from mci.domain.eligibility import ReasonCode
from mci.domain.identifiers import IdentifierType
from mci.domain.principal import Role
from mci.domain.reference import PaymentType

WEB = Path(__file__).resolve().parents[2] / "web"
LANGUAGES = ("en", "es")
# Keys built from a value at run time: prefix -> every value the app can meet (from the domain's enums).
DYNAMIC = {
    "state": {state.value for state in ClaimState},
    "action": {action.value for action in Action} | {"add_customer"},
    "reason": {code.value for code in ReasonCode},
    "identifier": {kind.value for kind in IdentifierType},
    "tab": {tab.value for tab in Tab},
    "payment_type": {kind.value for kind in PaymentType},
    "role": {Role.INCENTIVES_USER.value, Role.INCENTIVES_ADMIN.value, Role.REFERRAL_ADMIN.value},
    "kind": {"claim", "known_customer"},
    "attention.reason": {reason.value for reason in AttentionReason},
    "language.name": set(LANGUAGES),
    "language.switch": set(LANGUAGES),
    "origin": {origin.value for origin in Origin},
    "decision": {decision.value for decision in Decision},
    "email_status": {status.value for status in EmailStatus},
    "email_failure": {"email_rejected", "gave_up"},  # EmailFailure.reason
}
# SPEC §7: the source page's own labels.
SPEC_LABELS = {
    "tab.eligible": ("Eligible", "Apto"),
    "tab.ineligible": ("Ineligible", "No apto"),
    "tab.complete": ("Complete", "Completo"),
    "action.add_customer": ("Add customer", "Agregar cliente"),
    "action.claim_customer": ("Claim customer", "Reclamar cliente"),
    "action.send_consent": ("Send customer consent email", "Enviar correo electrónico de consentimiento del cliente"),
    "action.resend_consent": (
        "Resend customer consent email",
        "Volver a enviar correo electrónico para el consentimiento del cliente",
    ),
    "action.next": ("Next", "Siguiente"),
    "action.back": ("Back", "Atrás"),
}


def catalogue(language: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((WEB / "i18n" / f"{language}.json").read_text(encoding="utf-8"))
    return loaded


def sources() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted((WEB / "js").rglob("*.js")))


def test_every_language_has_the_same_keys_and_placeholders() -> None:
    english = catalogue("en")
    for language in LANGUAGES[1:]:
        other = catalogue(language)
        assert sorted(other) == sorted(english), language
        for key, text in english.items():
            assert set(re.findall(r"\{\w+\}", other[key])) == set(re.findall(r"\{\w+\}", text)), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_the_modules_use_exists(language: str) -> None:
    keys = catalogue(language)
    code = sources()
    namespaces = {key.split(".")[0] for key in keys}
    literal = {
        key for key in re.findall(r"""["']([a-z_]+(?:\.[a-z_]+)+)["']""", code) if key.split(".")[0] in namespaces
    }
    plurals = set(re.findall(r"""plural\(["']([a-z_.]+)["']""", code))
    prefixes = set(re.findall(r"""\bt\(`([a-z_.]+)\.\$\{""", code))

    assert literal, "no keys found: the pattern no longer matches how modules call t()"
    assert sorted(literal - plurals - set(keys)) == []
    assert sorted(f"{key}.{form}" for key in plurals for form in ("one", "other") if f"{key}.{form}" not in keys) == []
    assert sorted(prefixes - set(DYNAMIC)) == [], "a new dynamic prefix: list its values in DYNAMIC"
    missing = [
        f"{prefix}.{value}" for prefix in prefixes for value in DYNAMIC[prefix] if f"{prefix}.{value}" not in keys
    ]
    assert sorted(missing) == []


# Codes of the API's errors[] (problem details, SPEC §4): the domain's (ValidationFailed, FieldError,
# PydanticCustomError in shared/mci) and pydantic's for the request models' constraints.
FIELD_ERROR_CODES = {
    "invalid", "missing", "unknown", "duplicate", "not_allowed", "out_of_range", "variable_payment_alone",
    "email_rejected", "control_character", "number_type",
    "value_error", "string_type", "string_too_short", "string_too_long", "string_pattern_mismatch", "int_type",
    "int_parsing", "int_from_float", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
    "bool_type", "literal_error", "enum", "list_type", "too_short", "too_long", "extra_forbidden",
}  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_field_error_code_reads_as_a_sentence(language: str) -> None:
    """Issue 14 item 2: errors[] are shown by code from the catalogue (the API's English only for a new code)."""
    keys = catalogue(language)
    assert sorted(code for code in FIELD_ERROR_CODES if f"field_error.{code}" not in keys) == []


def test_the_source_pages_labels_are_used() -> None:
    english, spanish = catalogue("en"), catalogue("es")

    assert {key: (english[key], spanish[key]) for key in SPEC_LABELS} == SPEC_LABELS


def history_reasons_the_service_writes() -> set[str]:
    """Every reason the domain writes into a claim's history itself (a person's reason is shown as typed)."""
    domain = Path(__file__).resolve().parents[2] / "shared" / "mci" / "domain"
    code = "\n".join(path.read_text(encoding="utf-8") for path in domain.glob("*.py"))
    literals = set(re.findall(r'reason="([a-z ]+)"', code))
    literals |= set(re.findall(r'"([a-z ]+ deadline passed)"', code))  # Claim.expired_at_deadline
    return literals | {origin.value for origin in Origin}  # the first entry's reason is the claim's origin


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_history_reason_the_service_writes_reads_in_the_language(language: str) -> None:
    reasons = history_reasons_the_service_writes()
    assert {"consent requested", "consent deadline passed", "added"} <= reasons
    keys = catalogue(language)
    missing = sorted(reason for reason in reasons if f"history_reason.{reason.replace(' ', '_')}" not in keys)
    assert missing == [], f"history reasons without a {language} sentence"
