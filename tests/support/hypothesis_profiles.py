"""Hypothesis profiles: "ci" (the full run CI makes) and "dev" (a quick local run), chosen at import.

HYPOTHESIS_PROFILE names the profile; without it, CI=true (or 1, yes) selects "ci" and anything else "dev".
Importing this module registers both and loads the chosen one; ``ACTIVE`` names it and ``active()`` returns
its settings, for tests that want them explicitly whatever another module loaded.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.conftest_tiers import in_ci

SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.filter_too_much]

# The stateful test drives real handlers on moto: each example is a fresh store and a dozen HTTP calls.
settings.register_profile(
    "ci",
    max_examples=500,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=SLOW_IS_FINE,
    database=None,  # CI starts clean; a failure prints its reproduction blob instead
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=60,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=SLOW_IS_FINE,
)


def _chosen() -> str:
    named = os.environ.get("HYPOTHESIS_PROFILE", "").strip()
    if named:
        return named
    return "ci" if in_ci() else "dev"


ACTIVE = _chosen()
settings.load_profile(ACTIVE)


def active() -> settings:
    return settings.get_profile(ACTIVE)
