"""Tracing where it was measured to pay (docs/performance.md, "Tracing"): the event-driven functions run under the
Powertools Tracer when the TRACING setting is on, annotated with their operation; off, nothing is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mci import tracing, wiring

ROOT = Path(__file__).resolve().parents[2]

# In a process of its own: the Tracer patches botocore for the whole process, as it does on Lambda.
ON_LAMBDA = r"""
import json, sys
from aws_xray_sdk.core import xray_recorder
sent = []
xray_recorder.emitter.send_entity = lambda entity: sent.append(json.loads(entity.serialize()))
from functions.publish_events import app as publisher
from functions.ses_feedback import app as feedback
from local.lambda_runtime import FakeLambdaContext
context = FakeLambdaContext("PublishEventsFunction")
answers = [publisher.lambda_handler({"Records": []}, context), feedback.lambda_handler({"detail": {}}, context)]
print(json.dumps({"answers": answers, "sent": sent}))
"""


def test_with_tracing_off_a_traced_handler_is_called_as_it_is() -> None:
    calls: list[str] = []

    @tracing.traced("an_operation")
    def handler(event: dict[str, str], context: object) -> dict[str, str]:
        tracing.annotate("claim_id", "c-1")
        calls.append(event["n"])
        return {"answer": event["n"]}

    assert handler({"n": "1"}, None) == {"answer": "1"}
    assert calls == ["1"]
    assert tracing.tracer() is None


def test_the_setting_turns_the_tracer_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACING", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")  # not on Lambda: Powertools' own switch stays off
    wiring.reset()

    active = tracing.tracer()

    assert active is not None
    assert active.disabled


def test_on_lambda_the_event_driven_functions_send_a_subsegment_annotated_with_their_operation() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "COVERAGE_"))}
    environment.update(
        {
            "TRACING": "true",
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": "PublishEventsFunction",
            "_X_AMZN_TRACE_ID": "Root=1-6751a1b2-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", ON_LAMBDA],
        check=False,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])

    assert found["answers"] == [{"batchItemFailures": []}, {"updated": False}]
    handlers = [s for s in found["sent"] if s["name"] == "## lambda_handler"]
    assert [h["annotations"]["operation"] for h in handlers] == ["publish_events", "ses_feedback"]
    assert handlers[0]["annotations"]["published"] == 0
    assert handlers[0]["annotations"]["ColdStart"] is True
    assert not any("response" in json.dumps(h.get("metadata", {})) for h in handlers)  # never an answer on a trace
