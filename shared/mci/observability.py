"""Observability applied once per invocation, at the edge (the resolver's ``handle`` and each event handler).

Every log line of an invocation carries the Lambda context, the cold-start flag and one correlation id (the
API request id, the schedule's event id, the stream record's event id), and ``partner_id`` and ``claim_id``
where the edge knows them. The level is Lambda's (``AWS_LAMBDA_LOG_LEVEL``, each function's LoggingConfig), which
Powertools obeys before ``POWERTOOLS_LOG_LEVEL`` (template Globals, the same INFO). Never a contact's name, email,
or a consent link or its hash: those never reach ``extra`` or the appended keys.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from pydantic import ValidationError

T = TypeVar("T")

logger = Logger()


def observed(event: Any, context: Any, run: Callable[[], T], *, correlation_id: str | None, **keys: object) -> T:
    """``run()`` as one invocation: its log context set first (the previous invocation's keys cleared)."""

    @logger.inject_lambda_context(clear_state=True)
    def invocation(_event: Any, _context: Any) -> T:
        logger.set_correlation_id(correlation_id)
        log_keys(**keys)
        return run()

    return invocation(event, context)


def log_keys(**keys: object) -> None:
    """Add keys known during the invocation (``claim_id`` once read) to its following lines."""
    known = {name: value for name, value in keys.items() if value is not None}
    if known:
        logger.append_keys(**known)


def correlation_id() -> str | None:
    """The current invocation's correlation id, as its log lines carry it."""
    found = logger.get_correlation_id()
    return str(found) if found else None


def error_trace(error: BaseException) -> str:
    """``error``'s traceback, then its causes', each ending with the exception's type and never its message: a
    message may quote the data it refused (pydantic's quotes the input, a contact's email or phone among it). Of a
    validation error, the fields and what was wrong with each."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        kind = type(current)
        what = f"{kind.__module__}.{kind.__qualname__}"
        if isinstance(current, ValidationError):
            what += f" ({refused_fields(current)})"
        parts.append(f"Traceback (most recent call last):\n{frames}{what}")
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n\nCaused by (or raised while handling):\n".join(parts)


def refused_fields(error: ValidationError) -> str:
    """What a validation error refused, without the input it quotes: ``customer_contact.name: missing; ...``."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in error.errors(include_input=False))
