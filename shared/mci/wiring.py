"""The composition root: builds the domain's collaborators from settings, once per process, on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from mci.adapters.aws import dynamodb
from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
from mci.adapters.dynamodb_reference import DynamoDBReferenceRepository
from mci.domain.clock import Clock, SystemClock
from mci.domain.metrics import BusinessMetrics
from mci.settings import Settings, get_settings

# Each factory imports what only it needs, so a function's cold start pays for its own collaborators.
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mci.adapters.dynamodb_lookups import DynamoDBLookups
    from mci.adapters.eventbridge_bus import EventBridgeBus
    from mci.adapters.ses_mailer import SesMailer
    from mci.domain.attention import AttentionQuery
    from mci.domain.consent import ConsentRequesting
    from mci.domain.consent_decision import ConsentDecisions
    from mci.domain.customers_page import CustomersPageQuery
    from mci.domain.expiry import Sweep
    from mci.domain.lifecycle import Lifecycle
    from mci.domain.nomination import Nominations
    from mci.domain.outbox import ConsentOutbox

T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    reference: DynamoDBReferenceRepository
    claims: DynamoDBClaimRepository
    lookups: DynamoDBLookups


_clock: Clock = SystemClock()


def use_clock(clock: Clock) -> None:
    """Replace the service clock (the local stack's time travel, tests)."""
    global _clock  # noqa: PLW0603 - the one process-wide clock, swapped only by the local stack and tests
    _clock = clock
    _forget_services()


@lru_cache(maxsize=1)
def services() -> Services:
    # Here, not at the top: the stream publisher, which never calls services(), then never imports it.
    from mci.adapters.dynamodb_lookups import DynamoDBLookups

    settings = get_settings()
    client = dynamodb()
    return Services(
        settings=settings,
        clock=_clock,
        reference=DynamoDBReferenceRepository(client, settings.table_name),
        claims=DynamoDBClaimRepository(client, settings.table_name, business_metrics()),
        lookups=DynamoDBLookups(client, settings.table_name),
    )


@lru_cache(maxsize=1)
def nominations() -> Nominations:
    """Adding and claiming customers, and their previews: only the functions serving those routes import it
    (nominations, pricing and their commands), not every function that reads or changes claims (issue 16, item 4)."""
    from mci.domain.nomination import Nominations

    runtime = services()
    return Nominations(
        reference=runtime.reference,
        claims=runtime.claims,
        clock=runtime.clock,
        retry=runtime.settings.conflict_retry,
        reminder_days=runtime.settings.reminder_offsets,
        lookups=runtime.lookups,
        metrics=business_metrics(),
    )


_metrics: BusinessMetrics | None = None


def use_metrics(metrics: BusinessMetrics | None) -> None:
    """Replace the business metrics (tests; None: back to Powertools EMF on stdout)."""
    global _metrics  # noqa: PLW0603 - the one process-wide metrics port, swapped only by tests
    _metrics = metrics
    _forget_services()


def swapped_metrics() -> BusinessMetrics | None:
    """The business metrics ``use_metrics`` put in place, or None (Powertools EMF): what to put back after a swap."""
    return _metrics


@lru_cache(maxsize=1)
def business_metrics() -> BusinessMetrics:
    """Counted where a change commits (mci.domain.metrics); Powertools EMF lines unless a test swapped it."""
    if _metrics is not None:
        return _metrics
    from mci.adapters.powertools_metrics import PowertoolsMetrics

    settings = get_settings()
    return PowertoolsMetrics(settings.powertools_metrics_namespace, settings.powertools_service_name, settings.stage)


@lru_cache(maxsize=1)
def consent_outbox() -> ConsentOutbox:
    """The emails the consent functions and the sweep send; its mailer creates the SES client on the first send."""
    from mci.domain.outbox import ConsentOutbox

    runtime = services()
    settings = runtime.settings
    return ConsentOutbox(
        claims=runtime.claims,
        mailer=mailer(),
        clock=runtime.clock,
        lookups=runtime.lookups,
        public_base_url=settings.public_base_url,
        retry=settings.conflict_retry,
        max_attempts=settings.outbox_max_attempts,
    )


@lru_cache(maxsize=1)
def consent_requesting() -> ConsentRequesting:
    from mci.domain.consent import ConsentRequesting

    return _with_outbox(ConsentRequesting)


@lru_cache(maxsize=1)
def consent_decisions() -> ConsentDecisions:
    from mci.domain.consent_decision import ConsentDecisions

    return _with_outbox(ConsentDecisions)


def _with_outbox(service: Callable[..., T]) -> T:
    """A consent use case: it writes the claim change and leaves the emails to the outbox."""
    runtime = services()
    return service(
        claims=runtime.claims,
        clock=runtime.clock,
        lookups=runtime.lookups,
        outbox=consent_outbox(),
        retry=runtime.settings.conflict_retry,
    )


@lru_cache(maxsize=1)
def mailer() -> SesMailer:
    from mci.adapters.aws import sesv2
    from mci.adapters.ses_mailer import SesMailer

    settings = get_settings()
    return SesMailer(sesv2, settings.sender_email, settings.ses_configuration_set or None)


@lru_cache(maxsize=1)
def sweep_mailer() -> SesMailer:
    """The sweep's mailer: one attempt per send, so its pace sees SES's first throttle (``mailer()`` retries)."""
    from mci.adapters.aws import sesv2_one_attempt
    from mci.adapters.ses_mailer import SesMailer

    settings = get_settings()
    return SesMailer(sesv2_one_attempt, settings.sender_email, settings.ses_configuration_set or None)


@lru_cache(maxsize=1)
def lifecycle() -> Lifecycle:
    from mci.domain.lifecycle import Lifecycle

    runtime = services()
    return Lifecycle(
        claims=runtime.claims,
        clock=runtime.clock,
        retry=runtime.settings.conflict_retry,
        operations_partner_id=runtime.settings.operations_partner_id,
    )


@lru_cache(maxsize=1)
def sweep() -> Sweep:
    from mci.domain.expiry import Sweep

    runtime = services()
    reference = runtime.reference

    def engagement_names(engagement_ids: Sequence[str]) -> dict[str, str]:
        return {e: found.name for e, found in reference.get_engagements(engagement_ids).items()}

    return Sweep(
        outbox=consent_outbox(),
        claims=runtime.claims,
        due=runtime.claims,
        mailer=sweep_mailer(),  # the outbox sends through it too (Sweep.run: ``outbox.through``)
        clock=runtime.clock,
        engagement_names=engagement_names,
        send_rate=runtime.settings.ses_max_send_rate,
        send_margin=runtime.settings.sweep_send_margin_seconds,
    )


@lru_cache(maxsize=1)
def customers_page() -> CustomersPageQuery:
    from mci.domain.customers_page import CustomersPageQuery

    runtime = services()
    return CustomersPageQuery(
        reference=runtime.reference,
        claims=runtime.claims,
        now=runtime.clock.now,
        cursor_key=runtime.settings.cursor_signing_key.get_secret_value().encode(),
        lookups=runtime.lookups,
    )


@lru_cache(maxsize=1)
def attention() -> AttentionQuery:
    from mci.domain.attention import AttentionQuery

    runtime = services()
    return AttentionQuery(
        reference=runtime.reference,
        claims=runtime.claims,
        now=runtime.clock.now,
        cursor_key=runtime.settings.cursor_signing_key.get_secret_value().encode(),
    )


@lru_cache(maxsize=1)
def event_bus() -> EventBridgeBus:
    from mci.adapters.aws import events
    from mci.adapters.eventbridge_bus import EventBridgeBus

    return EventBridgeBus(events(), get_settings().event_bus_name)


def _forget_services() -> None:
    factories = (services, nominations, mailer, sweep_mailer, consent_outbox, consent_requesting, consent_decisions)
    for factory in (*factories, lifecycle, sweep, customers_page, attention, event_bus, business_metrics):
        factory.cache_clear()


def reset() -> None:
    """Forget everything built from the environment (tests that change it)."""
    from mci import tracing
    from mci.adapters.aws import reset_clients

    get_settings.cache_clear()
    tracing.tracer.cache_clear()
    _forget_services()
    reset_clients()
