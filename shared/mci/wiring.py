"""The composition root: builds the domain's collaborators from settings, once per process, on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from mci.adapters.aws import dynamodb, sesv2
from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
from mci.adapters.dynamodb_reference import DynamoDBReferenceRepository
from mci.adapters.ses_mailer import SesMailer
from mci.domain.clock import Clock, SystemClock
from mci.domain.consent import ConsentFlow
from mci.domain.nomination import Nominations
from mci.settings import Settings, get_settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    reference: DynamoDBReferenceRepository
    claims: DynamoDBClaimRepository
    nominations: Nominations


_clock: Clock = SystemClock()


def use_clock(clock: Clock) -> None:
    """Replace the service clock (the local stack's time travel, tests)."""
    global _clock  # noqa: PLW0603 - the one process-wide clock, swapped only by the local stack and tests
    _clock = clock
    services.cache_clear()
    consent_flow.cache_clear()


@lru_cache(maxsize=1)
def services() -> Services:
    settings = get_settings()
    client = dynamodb()
    reference = DynamoDBReferenceRepository(client, settings.table_name)
    claims = DynamoDBClaimRepository(client, settings.table_name)
    return Services(
        settings=settings,
        clock=_clock,
        reference=reference,
        claims=claims,
        nominations=Nominations(
            reference=reference, claims=claims, clock=_clock, write_attempts=settings.claim_write_attempts
        ),
    )


@lru_cache(maxsize=1)
def consent_flow() -> ConsentFlow:
    """Only the consent functions pay for the SES client."""
    runtime = services()
    settings = runtime.settings
    return ConsentFlow(
        reference=runtime.reference,
        claims=runtime.claims,
        mailer=SesMailer(sesv2(), settings.sender_email, settings.ses_configuration_set or None),
        clock=runtime.clock,
        public_base_url=settings.public_base_url,
    )


def reset() -> None:
    """Forget everything built from the environment (tests that change it)."""
    from mci.adapters.aws import reset_clients

    get_settings.cache_clear()
    services.cache_clear()
    consent_flow.cache_clear()
    reset_clients()
