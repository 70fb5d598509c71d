"""The ClaimRepository contract on the in-memory fake, and rule 11's race through add_customer on it."""

from __future__ import annotations

import pytest

from mci.adapters.memory import MemoryClaimRepository, MemoryReferenceRepository
from mci.domain.clock import FixedClock
from mci.domain.lookups import SeparateLookups
from mci.domain.nomination import Nominations
from tests.support.claim_repository_contract import Backend, ClaimRepositoryContract
from tests.support.claims import (
    MemoryStoreView,
    assert_expired_once,
    assert_race_held_the_limit,
    race_add_customer,
    race_reference_data,
    seed_overdue_claim,
)
from tests.support.reference import NOW


class TestMemoryClaimRepository(ClaimRepositoryContract):
    @pytest.fixture
    def backend(self) -> Backend:
        repository = MemoryClaimRepository()
        reference = MemoryReferenceRepository()
        lookups = SeparateLookups(
            reference,
            read_limits=repository.read_limits,
            get_known_customer=repository.get_known_customer,
            get_referral=repository.get_referral,
        )
        return Backend(repository=repository, view=MemoryStoreView(repository), reference=reference, lookups=lookups)


def test_fifty_simultaneous_adds_respect_the_limit_on_the_fake() -> None:
    claims = MemoryClaimRepository()
    nominations = Nominations(
        reference=MemoryReferenceRepository(race_reference_data()), claims=claims, clock=FixedClock(NOW)
    )

    outcome = race_add_customer(nominations)

    assert_race_held_the_limit(outcome, MemoryStoreView(claims))
    assert not outcome.unavailable, outcome.summary()


def test_fifty_simultaneous_adds_expire_an_overdue_claim_exactly_once_on_the_fake() -> None:
    claims = MemoryClaimRepository()
    clock = FixedClock(NOW)
    nominations = Nominations(reference=MemoryReferenceRepository(race_reference_data()), claims=claims, clock=clock)
    overdue = seed_overdue_claim(nominations, clock)

    outcome = race_add_customer(nominations)

    assert_race_held_the_limit(outcome, MemoryStoreView(claims))
    assert_expired_once(MemoryStoreView(claims), overdue)
