"""X-Ray tracing through the Powertools Tracer, where it was measured to be worth it (docs/performance.md, "Tracing").

The three event-driven functions (the sweep, the stream publisher, SES feedback) wrap their handler in
``traced(operation)``: a subsegment per invocation annotated with ``operation`` (and what the handler adds with
``annotate``: a claim id, counts), every boto3 call a subsegment of it. The API functions are not traced by the
SDK: Lambda's own segment (``Tracing: Active``) is all they send. Nothing is imported until the first traced
invocation, and only when the ``TRACING`` setting is on; outside Lambda Powertools turns the Tracer off itself.
Responses and errors are never put on a trace (they may hold a contact's name or email).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from mci.settings import get_settings

if TYPE_CHECKING:
    from numbers import Number

    from aws_lambda_powertools import Tracer

Result = TypeVar("Result")
Handler = Callable[[dict[str, Any], Any], Result]


@functools.cache
def tracer() -> Tracer | None:
    """The process's Tracer, created at first use (the X-Ray SDK with it); None when tracing is off."""
    if not get_settings().tracing:
        return None
    from aws_lambda_powertools import Tracer

    # Only botocore: every call the functions make. patch_all would also try requests, httplib, sqlite3...
    return Tracer(patch_modules=["boto3"])


def annotate(key: str, value: str | int | bool) -> None:
    """A searchable annotation on the current invocation's subsegment; nothing when tracing is off."""
    active = tracer()
    if active is not None:
        active.put_annotation(key, value if isinstance(value, str | bool) else cast("Number", value))


def traced(operation: str) -> Callable[[Handler[Result]], Handler[Result]]:
    """Trace each invocation of a Lambda handler as ``operation`` (when the TRACING setting is on)."""

    def decorate(handler: Handler[Result]) -> Handler[Result]:
        @functools.wraps(handler)
        def invoke(event: dict[str, Any], context: Any) -> Result:
            active = tracer()
            if active is None:
                return handler(event, context)

            @active.capture_lambda_handler(capture_response=False, capture_error=False)
            @functools.wraps(handler)  # the subsegment is named after it: "## lambda_handler"
            def invocation(event: dict[str, Any], context: Any) -> Result:
                active.put_annotation("operation", operation)
                return handler(event, context)

            result: Result = invocation(event, context)
            return result

        return invoke

    return decorate
