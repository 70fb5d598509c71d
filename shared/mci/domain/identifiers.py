"""Customer identifiers: the five types, their shapes and their normal form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mci.domain.errors import ValidationFailed


class IdentifierType(StrEnum):
    DOMAIN = "domain"
    TENANT_ID = "tenant_id"
    TPID = "tpid"
    SUBSCRIPTION_ID = "subscription_id"
    MSX_OPPORTUNITY_ID = "msx_opportunity_id"


FIXED_PAYMENT_TYPES = frozenset(
    {IdentifierType.DOMAIN, IdentifierType.TENANT_ID, IdentifierType.TPID, IdentifierType.SUBSCRIPTION_ID}
)
VARIABLE_PAYMENT_TYPES = frozenset({IdentifierType.MSX_OPPORTUNITY_ID})

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TPID = re.compile(r"^[0-9]{1,18}$")
_MSX = re.compile(r"^7-[A-Za-z0-9]{6,12}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
MAX_IDENTIFIER_LENGTH = 253

_SHAPES = {
    IdentifierType.TENANT_ID: "a GUID such as 5f1c2a3b-0000-4000-8000-000000000001",
    IdentifierType.SUBSCRIPTION_ID: "a GUID such as 5f1c2a3b-0000-4000-8000-000000000001",
    IdentifierType.TPID: "digits only (at most 18)",
    IdentifierType.MSX_OPPORTUNITY_ID: "'7-' followed by 6 to 12 letters or digits",
    IdentifierType.DOMAIN: "a domain name such as contoso.com",
}


@dataclass(frozen=True, slots=True)
class Identifier:
    """A normalised customer identifier."""

    type: IdentifierType
    value: str

    @property
    def key(self) -> str:
        """Stable text form, used as the customer key for limits, uniqueness and known customers."""
        return f"{self.type.value}:{self.value}"


def normalise_domain(raw: str) -> str | None:
    """Lower-case IDNA form of a domain name, or None when it is not a valid one."""
    text = raw.strip().rstrip(".").lower()
    if not text or len(text) > MAX_IDENTIFIER_LENGTH:
        return None
    try:
        ascii_form = text.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_form.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if not _TLD.fullmatch(labels[-1]):
        return None
    return ascii_form


def parse_identifier(type_: str, value: str, field: str = "identifier") -> Identifier:
    """Validate and normalise an identifier, naming ``field`` in the error when it is not acceptable."""
    try:
        kind = IdentifierType(type_)
    except ValueError:
        allowed = ", ".join(t.value for t in IdentifierType)
        raise ValidationFailed.single(f"{field}.type", f"must be one of {allowed}") from None
    text = value.strip()
    if len(text) > MAX_IDENTIFIER_LENGTH:
        raise ValidationFailed.single(f"{field}.value", "is too long")
    normal: str | None
    if kind is IdentifierType.DOMAIN:
        normal = normalise_domain(text)
    elif kind in (IdentifierType.TENANT_ID, IdentifierType.SUBSCRIPTION_ID):
        normal = text.lower() if _GUID.fullmatch(text.lower()) else None
    elif kind is IdentifierType.TPID:
        normal = text if _TPID.fullmatch(text) else None
    else:
        normal = text if _MSX.fullmatch(text) else None
    if normal is None:
        raise ValidationFailed.single(f"{field}.value", f"is not a valid {kind.value}: expected {_SHAPES[kind]}")
    return Identifier(kind, normal)


def parse_customer_key(key: str) -> Identifier | None:
    """Inverse of ``Identifier.key``; None for text that is not a valid key."""
    type_, sep, value = key.partition(":")
    if not sep:
        return None
    try:
        identifier = parse_identifier(type_, value)
    except ValidationFailed:
        return None
    return identifier if identifier.key == key else None


def email_domain(email: str) -> str | None:
    """The normalised domain part of an email address."""
    _, at, domain = email.rpartition("@")
    return normalise_domain(domain) if at else None
