"""Settings are a model, read once at cold start; nothing else reads the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mci.domain.principal import OPERATIONS_PARTNER_ID
from mci.domain.retry import DEFAULT_RETRY, RetryPolicy
from mci.domain.sending import NEW_ACCOUNT_SEND_RATE, SEND_MARGIN_SECONDS

LAMBDA_MAX_TIMEOUT_SECONDS = 900  # the longest timeout Lambda allows a function


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(default="ClaimsTable", min_length=1)
    idempotency_table_name: str = Field(default="IdempotencyTable", min_length=1)
    stage: str = "dev"
    public_base_url: str = "http://127.0.0.1:3000"
    sender_email: str = "noreply@example.com"
    ses_configuration_set: str = ""
    event_bus_name: str = "mci-customers"
    # Domain event detail versions the publisher puts, each change in every one (docs/events.md#versions);
    # the template's PublishedEventVersions parameter.
    published_event_versions: Literal["1", "2", "1,2"] = "1,2"
    max_body_bytes: int = 64 * 1024
    max_body_depth: int = Field(default=16, ge=1, le=100)
    idempotency_ttl_seconds: int = 24 * 3600
    # Every write that re-reads and retries on a concurrent change (or a throttle) tries at most this often.
    claim_write_attempts: int = Field(default=DEFAULT_RETRY.attempts, ge=1)
    reminder_days: str = "7,1"
    operations_partner_id: str = Field(default=OPERATIONS_PARTNER_ID, min_length=1)
    # Rule 29: an email SES keeps failing (an operator problem) is given up after this many sends (poison).
    outbox_max_attempts: int = Field(default=8, ge=1)
    # The sweep sends at most this many emails a second (SES's maximum send rate for the account, less what the API's
    # own sends need); a run SES throttles all the same sends nothing more and leaves the rest queued.
    ses_max_send_rate: float = Field(default=NEW_ACCOUNT_SEND_RATE, gt=0)
    # A sweep run sends nothing more once its invocation has less than this many seconds left: the rest is deferred
    # to the next run, so Lambda never ends a run between an email SES took and its outbox write (a duplicate). Below
    # any Lambda timeout; the template's SweepSendMarginSeconds keeps it under half the sweep's own.
    sweep_send_margin_seconds: float = Field(default=SEND_MARGIN_SECONDS, ge=0, lt=LAMBDA_MAX_TIMEOUT_SECONDS)
    # Signs Customers-page cursors (rule 31). From Secrets Manager when deployed (template.yaml); a fixed,
    # non-secret value on the local stack and in tests. Empty: the Customers page refuses to start.
    cursor_signing_key: SecretStr = SecretStr("")
    # Business metrics (mci.domain.metrics): the namespace and the ``service`` dimension, as Powertools reads them.
    powertools_metrics_namespace: str = "MciCustomers"
    powertools_service_name: str = "mci-customers"
    # The Powertools Tracer in the event-driven functions (mci.tracing); on in template.yaml's Globals.
    tracing: bool = False

    @property
    def conflict_retry(self) -> RetryPolicy:
        """The one retry-on-conflict policy of every use case: CLAIM_WRITE_ATTEMPTS tries, the domain's pauses."""
        return RetryPolicy(attempts=self.claim_write_attempts)

    @property
    def event_versions(self) -> tuple[str, ...]:
        return tuple(self.published_event_versions.split(","))

    @property
    def reminder_offsets(self) -> tuple[int, ...]:
        """REMINDER_DAYS: days before the consent deadline at which the partner is reminded."""
        return tuple(int(d) for d in self.reminder_days.split(",") if d.strip())

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        fields = cls.model_fields
        return cls.model_validate(
            {name: source[name.upper()] for name in fields if name.upper() in source and source[name.upper()]}
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environ()
