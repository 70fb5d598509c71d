"""Domain exceptions. Each carries the problem code and HTTP status the edge answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldError:
    """One invalid field of a request, named by its dotted path."""

    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


@dataclass
class DomainError(Exception):
    """Base of every error the service reports to a client."""

    detail: str
    code: str = "error"
    status: int = 400
    title: str = "Bad request"
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class ValidationFailed(DomainError):
    """The request is well formed JSON but some fields are not acceptable (422)."""

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        names = ", ".join(e.field for e in errors)
        super().__init__(
            detail=detail or f"Invalid field(s): {names}",
            code="validation_error",
            status=422,
            title="Invalid request",
            extra={"errors": [e.as_dict() for e in errors]},
        )
        self.errors = errors

    @classmethod
    def single(cls, field_name: str, message: str, code: str = "invalid") -> ValidationFailed:
        return cls([FieldError(field_name, message, code)], detail=f"{field_name}: {message}")


class RuleViolation(DomainError):
    """A business rule refuses the request though each field is valid on its own (422)."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail=detail, code=code, status=422, title="Request refused", extra=extra)


class NotFound(DomainError):
    """Unknown, or belonging to another partner: the two are indistinguishable on purpose."""

    def __init__(self, what: str) -> None:
        super().__init__(detail=f"{what} not found", code="not_found", status=404, title="Not found")


class Unauthorized(DomainError):
    def __init__(self, detail: str = "A valid bearer token is required") -> None:
        super().__init__(detail=detail, code="unauthorized", status=401, title="Unauthorized")


class Forbidden(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, code="forbidden", status=403, title="Forbidden")


class Conflict(DomainError):
    """The request conflicts with the current state (409)."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail=detail, code=code, status=409, title="Conflict", extra=extra)


class DeadlinePassed(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, code="deadline_passed", status=410, title="Deadline passed")


class DependencyUnavailable(DomainError):
    """A dependency throttled or failed transiently; the client may retry after a pause."""

    def __init__(self, detail: str, retry_after_seconds: int = 1, status: int = 503) -> None:
        super().__init__(
            detail=detail,
            code="dependency_unavailable" if status == 503 else "throttled",
            status=status,
            title="Service unavailable" if status == 503 else "Too many requests",
            extra={"retry_after": retry_after_seconds},
        )
        self.retry_after_seconds = retry_after_seconds


class SendingThrottled(DependencyUnavailable):
    """The email service took nothing because of its sending rate or daily quota (SES: "Maximum sending rate
    exceeded"): the message is fine and will be taken later. An API caller gets the 503 with Retry-After; the sweep
    stops sending for the run and leaves the rest queued (mci.domain.sending), never counting it as a failure."""

    def __init__(self, detail: str = "The email service is at its sending rate; retry shortly.") -> None:
        super().__init__(detail, retry_after_seconds=1)


class SendOutcomeUnknown(DependencyUnavailable):
    """The email service may have taken the message: its answer was lost (a read timeout, a dropped connection) or
    it failed mid-way (5xx). Retryable as any unavailability; the outbox keeps the link of such an email live when it
    sends it again (``Claim.links_kept_for``), since the customer may hold it."""

    def __init__(self, error: DependencyUnavailable) -> None:
        super().__init__(error.detail, retry_after_seconds=error.retry_after_seconds)


class EmailRejected(DomainError):
    """SES refused a message for good (a bad address, a rejected message): sending it again cannot help.

    ``field`` names the contact whose address the client can fix; the claim records the failure (rule 29).
    """

    def __init__(self, detail: str, field: str = "email") -> None:
        super().__init__(
            detail=detail,
            code="email_rejected",
            status=422,
            title="Email refused",
            extra={
                "errors": [
                    FieldError(field, "the email service refused this address for good", "email_rejected").as_dict()
                ]
            },
        )
        self.field = field

    def naming(self, field: str) -> EmailRejected:
        """The same refusal, naming the contact field the recipient came from."""
        return EmailRejected(self.detail, field)
