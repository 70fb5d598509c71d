"""Customer identifiers (SPEC §2): the five types, their shapes, and their normal form."""

from __future__ import annotations

import pytest

from mci.domain.errors import ValidationFailed
from mci.domain.identifiers import (
    Identifier,
    IdentifierType,
    email_domain,
    normalise_domain,
    parse_customer_key,
    parse_identifier,
)

GUID = "5f1c2a3b-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("type_", "raw", "normal"),
    [
        ("domain", "contoso.com", "contoso.com"),
        ("domain", "  Contoso.COM \t", "contoso.com"),
        ("domain", "sales.eu.contoso.co.uk", "sales.eu.contoso.co.uk"),
        ("domain", "contoso.com.", "contoso.com"),
        ("domain", "my-shop.example", "my-shop.example"),
        ("domain", "Bücher.Example", "xn--bcher-kva.example"),
        ("domain", "xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("domain", "fabrikam.xn--p1ai", "fabrikam.xn--p1ai"),
        ("tenant_id", GUID, GUID),
        ("tenant_id", "  5F1C2A3B-0000-4000-8000-00000000000A  ", "5f1c2a3b-0000-4000-8000-00000000000a"),
        ("subscription_id", "9A8B7C6D-0000-4000-8000-00000000000A", "9a8b7c6d-0000-4000-8000-00000000000a"),
        ("tpid", "100200300", "100200300"),
        ("tpid", " 7 ", "7"),
        ("tpid", "1" * 18, "1" * 18),
        ("msx_opportunity_id", "7-ABC123", "7-ABC123"),
        ("msx_opportunity_id", " 7-abc123XYZ ", "7-abc123XYZ"),
        ("msx_opportunity_id", "7-" + "A1" * 6, "7-" + "A1" * 6),
    ],
)
def test_valid_identifiers_are_normalised(type_: str, raw: str, normal: str) -> None:
    identifier = parse_identifier(type_, raw)
    assert identifier == Identifier(IdentifierType(type_), normal)


def test_msx_opportunity_ids_keep_their_case() -> None:
    """Only domains and GUIDs are lower-cased (SPEC §2)."""
    assert parse_identifier("msx_opportunity_id", "7-AbCdEf").value == "7-AbCdEf"


@pytest.mark.parametrize(
    ("type_", "raw"),
    [
        ("domain", ""),
        ("domain", "   "),
        ("domain", "contoso"),
        ("domain", "contoso."),
        ("domain", ".contoso.com"),
        ("domain", "contoso..com"),
        ("domain", "-contoso.com"),
        ("domain", "contoso-.com"),
        ("domain", "con toso.com"),
        ("domain", "contoso_sales.com"),
        ("domain", "contoso.c"),
        ("domain", "contoso.c0m"),
        ("domain", "contoso.123"),
        ("domain", "https://contoso.com"),
        ("domain", "ana@contoso.com"),
        ("domain", "contoso.com/path"),
        ("domain", "a" * 64 + ".com"),
        ("tenant_id", "not-a-guid"),
        ("tenant_id", "{5f1c2a3b-0000-4000-8000-000000000001}"),
        ("tenant_id", "5f1c2a3b000040008000000000000001"),
        ("tenant_id", "5f1c2a3b-0000-4000-8000-00000000000g"),
        ("tenant_id", "5f1c2a3b-0000-4000-8000-0000000000011"),
        ("subscription_id", "fabrikam.com"),
        ("subscription_id", ""),
        ("tpid", ""),
        ("tpid", "12a"),
        ("tpid", "-1"),
        ("tpid", "1.5"),
        ("tpid", "1 2"),
        ("tpid", "1" * 19),
        ("tpid", "١٢٣"),  # Arabic-Indic digits are digits to str.isdigit, not to the spec
        ("msx_opportunity_id", "7-ABC12"),  # 5 characters
        ("msx_opportunity_id", "7-" + "A" * 13),
        ("msx_opportunity_id", "8-ABC123"),
        ("msx_opportunity_id", "7ABC123"),
        ("msx_opportunity_id", "7_ABC123"),
        ("msx_opportunity_id", "7-ABC-123"),
        ("msx_opportunity_id", "7-ABC 123"),
        ("msx_opportunity_id", "7-ÄBC123"),
        ("msx_opportunity_id", "ABC123"),
    ],
)
def test_invalid_values_name_identifier_value(type_: str, raw: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_identifier(type_, raw)
    error = raised.value
    assert error.status == 422
    assert error.code == "validation_error"
    assert [e.field for e in error.errors] == ["identifier.value"]
    assert type_ in error.errors[0].message


@pytest.mark.parametrize("type_", ["email", "", "DOMAIN", "tenant", "msx"])
def test_unknown_type_names_identifier_type(type_: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_identifier(type_, "contoso.com")
    assert [e.field for e in raised.value.errors] == ["identifier.type"]
    assert "domain" in raised.value.errors[0].message


def test_error_names_the_field_it_is_given() -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_identifier("tpid", "abc", field="customers[3]")
    assert raised.value.errors[0].field == "customers[3].value"


def test_overlong_value_is_refused_before_parsing() -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_identifier("domain", "a." * 200 + "com")
    assert raised.value.errors[0].field == "identifier.value"
    assert "too long" in raised.value.errors[0].message


def test_domain_with_an_embedded_newline_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        parse_identifier("domain", "fabrikam\n.com")


def test_key_is_type_and_normal_value() -> None:
    identifier = parse_identifier("domain", " Bücher.Example ")
    assert identifier.key == "domain:xn--bcher-kva.example"


@pytest.mark.parametrize(
    "raw",
    [("tenant_id", GUID), ("tpid", "100200300"), ("domain", "contoso.com"), ("msx_opportunity_id", "7-ABC123XYZ")],
)
def test_customer_key_round_trips(raw: tuple[str, str]) -> None:
    identifier = parse_identifier(*raw)
    assert parse_customer_key(identifier.key) == identifier


@pytest.mark.parametrize(
    "key",
    ["", "contoso.com", "domain:", "domain:not a domain", "email:ana@contoso.com", f"tenant_id:{GUID.upper()}"],
)
def test_customer_key_refuses_non_keys(key: str) -> None:
    """A key must be exactly the normal form: an upper-case GUID is not a key."""
    assert parse_customer_key(key) is None


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("ana@Fabrikam.COM", "fabrikam.com"),
        ("ana@bücher.example", "xn--bcher-kva.example"),
        ("odd@local@fabrikam.com", "fabrikam.com"),
        ("no-at-sign", None),
        ("ana@", None),
        ("ana@nodot", None),
    ],
)
def test_email_domain(email: str, domain: str | None) -> None:
    assert email_domain(email) == domain


def test_normalise_domain_returns_none_for_undecodable_idna() -> None:
    assert normalise_domain("a" * 70 + "ü.com") is None
