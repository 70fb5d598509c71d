"""Observability applied once per invocation, at the edge (the resolver's ``handle`` and each event handler).

Every log line of an invocation carries the Lambda context, the cold-start flag and one correlation id (the
API request id, the schedule's event id, the stream record's event id), and ``partner_id`` and ``claim_id``
where the edge knows them. The level comes from ``POWERTOOLS_LOG_LEVEL`` and debug sampling from
``POWERTOOLS_LOGGER_SAMPLE_RATE`` (template Globals). Never a contact's name, email, or a consent link or
its hash: those never reach ``extra`` or the appended keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger

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
