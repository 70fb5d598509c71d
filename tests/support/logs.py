"""What the functions log, captured as CloudWatch would receive it, and the personal data it must never hold.

The Powertools logger (``mci.observability.logger``) writes to the stream it was given when it was created and
does not propagate, so neither ``capsys`` nor ``caplog`` sees its lines: ``service_log_lines`` adds a handler with
the logger's own JSON formatter. Other loggers reach the root logger (``caplog``); EMF metric lines are printed to
stdout (``capsys``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import quote, quote_plus

from mci.domain.consent_token import token_hash


@contextmanager
def service_log_lines(level: str = "INFO") -> Iterator[io.StringIO]:
    """Every line the service's logger writes at ``level`` and above while inside, one JSON object a line."""
    from mci.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    before = logger.getEffectiveLevel()
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def personal_data(
    *, contacts: Iterable[Mapping[str, str]] = (), tokens: Iterable[str] = (), public_base_url: str = ""
) -> dict[str, str]:
    """What must never reach a log line, by what it is. Of each contact: its name and each word of it, its email
    (also percent-encoded) and the part before the @, its phone and the phone's digits: a validation error
    quotes a truncated value, ``'Quenby.Marrow+... 943'``. Of each consent token: the token, its stored hash (as
    ``mci.domain.consent_token`` computes it) and its link. Compared case-insensitively by ``found_in``."""
    found: dict[str, str] = {}
    for contact in contacts:
        name, email, phone = contact.get("name", ""), contact.get("email", ""), contact.get("phone", "")
        parts = {
            "name": name,
            **{f"name word {word!r}": word for word in name.split() if len(word) >= 4},
            "email": email,
            "email local part": email.rpartition("@")[0],
            "email percent-encoded": quote(email, safe=""),
            "email form-encoded": quote_plus(email, safe=""),
            "phone": phone,
            "phone digits": "".join(c for c in phone if c.isdigit()),
        }
        found.update({f"contact {name or email} {what}": value for what, value in parts.items() if value})
    for n, token in enumerate(tokens):
        found[f"consent token {n}"] = token
        found[f"consent token {n} hash"] = token_hash(token)
        found[f"consent link {n}"] = f"{public_base_url.rstrip('/')}/consent/{token}"
    return found


def found_in(logged: str, secrets: dict[str, str]) -> list[str]:
    """The names of the ``secrets`` that ``logged`` holds, in any letter case (nothing, always)."""
    text = logged.casefold()
    return [name for name, value in secrets.items() if value.casefold() in text]
