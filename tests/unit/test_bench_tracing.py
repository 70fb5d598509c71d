"""The tracing section of the benchmark measures a Tracer that really traces: enabled as on Lambda, the X-Ray SDK
imported, botocore patched, against the same function without it (issue 15 item 4)."""

from __future__ import annotations

from bench import tracing
from local.cloudformation import load_template


def test_the_traced_sample_runs_an_enabled_tracer_beside_the_untraced_one() -> None:
    found = tracing.measure(load_template(), runs=1, jobs=1, only=["SesFeedbackFunction"], warm_up=False)

    (row,) = found["functions"]
    assert row["function"] == "SesFeedbackFunction"
    assert row["botocore_patched"] is True  # a disabled Tracer (outside Lambda) would patch nothing
    assert row["traced_modules"] > row["modules"]  # the X-Ray SDK was imported by the traced sample only
    assert row["tracer_cpu_ms"] > 0
    assert row["ratio"] > 0
    assert found["patch_modules"] == "boto3"
