"""The local metrics board (issue 15 item 5): what a function prints is captured per invocation, and every EMF
line in it, whatever its metric names and dimensions, becomes counters and the claim funnel."""

from __future__ import annotations

import gc
import io
import json
import re
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

from local import metrics
from local.lambda_runtime import LocalFunction, printed_by_this_thread
from local.server import LocalRequest


def _emitter() -> LocalFunction:
    return LocalFunction("EmitMetricsFunction", "tests/support", "emf_function.lambda_handler", memory=128, timeout=3)


def _invoke(board: metrics.MetricsBoard, event: dict[str, Any]) -> str:
    """Invoke the Powertools emitter as the local stack does; what it printed, as the board read it."""
    printed: list[str] = []

    def read(text: str) -> None:
        printed.append(text)
        board.read("EmitMetricsFunction", text)

    _emitter().invoke(event, on_output=read)
    return "".join(printed)


def test_what_a_function_emits_through_powertools_metrics_moves_its_counters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    board = metrics.MetricsBoard()

    printed = _invoke(
        board, {"metrics": {"CustomersAdded": 2, "ConsentsGranted": 1}, "dimensions": {"payment_type": "fixed"}}
    )

    emf = [json.loads(line) for line in printed.splitlines() if '"_aws"' in line]
    assert len(emf) == 1  # Powertools' own line, flushed at the end of the invocation
    assert capsys.readouterr().out.count('"_aws"') == 1  # and it still reaches the console
    found = board.as_json()
    assert found["lines"] == 1
    assert found["rejected_lines"] == 0
    counters = {c["name"]: c for c in found["counters"]}
    assert set(counters) == {"CustomersAdded", "ConsentsGranted"}
    assert counters["CustomersAdded"]["value"] == 2
    assert counters["CustomersAdded"]["namespace"] == "MciCustomers"
    assert counters["CustomersAdded"]["unit"] == "Count"
    assert counters["CustomersAdded"]["dimensions"] == {"service": "mci-customers", "payment_type": "fixed"}
    assert counters["CustomersAdded"]["functions"] == ["EmitMetricsFunction"]
    funnel = {step["step"]: step["value"] for step in found["funnel"]}
    assert funnel == {"Added": 2, "Consent requested": 0, "Consent granted": 1, "Submitted": 0, "Completed": 0}


def test_an_invocation_that_emits_nothing_moves_nothing() -> None:
    board = metrics.MetricsBoard()
    _invoke(board, {"metrics": {"CustomersAdded": 1}})

    with pytest.warns(UserWarning, match="No application metrics to publish"):
        _invoke(board, {"metrics": {}})

    assert board.as_json()["lines"] == 1
    assert board.total("CustomersAdded") == 1


def test_what_a_failing_invocation_printed_is_read_too() -> None:
    board = metrics.MetricsBoard()

    with pytest.raises(RuntimeError, match="failed after adding"):
        _invoke(board, {"metrics": {"ClaimsSubmitted": 1}, "fail": True})

    assert board.total("ClaimsSubmitted") == 1  # Powertools flushes on the way out, and Lambda logs it


def test_any_metric_name_and_dimension_set_is_counted_as_cloudwatch_would() -> None:
    line = {
        "_aws": {
            "Timestamp": 1764921600000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Other",
                    "Dimensions": [["service"], ["service", "reason_code"]],
                    "Metrics": [{"Name": "EligibilityRefusals", "Unit": "Count"}],
                }
            ],
        },
        "service": "mci-customers",
        "reason_code": "criteria_not_met",
        "EligibilityRefusals": [1, 2],
    }
    board = metrics.MetricsBoard()

    board.read("CheckEligibilityFunction", "a log line\n" + json.dumps(line) + "\n{not json\n")

    series = {tuple(sorted(c["dimensions"])): c for c in board.as_json()["counters"]}
    assert series[("service",)]["value"] == 3  # one series per dimension set, its values summed
    assert series[("reason_code", "service")]["value"] == 3
    assert series[("service",)]["data_points"] == 2
    assert board.total("EligibilityRefusals") == 3  # each record counted once for the funnel's totals
    assert board.as_json()["lines"] == 1


@pytest.mark.parametrize(
    "broken",
    [
        {"_aws": "x"},
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [], "Metrics": [{"Name": "M"}]}],
            }
        },
        {"_aws": {"CloudWatchMetrics": []}},
        {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["d"]], "Metrics": []}]}},
        {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Dimensions": [], "Metrics": []}]}},
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [], "Metrics": [{"Name": "M"}]}],
            },
            "M": "1",
        },
    ],
)
def test_a_line_that_breaks_emf_is_rejected_not_guessed(broken: dict[str, Any]) -> None:
    board = metrics.MetricsBoard()

    board.read("F", json.dumps(broken))

    assert (board.as_json()["lines"], board.as_json()["rejected_lines"], board.as_json()["counters"]) == (0, 1, [])


def test_each_thread_captures_only_what_it_printed() -> None:
    captured: dict[int, str] = {}
    start = threading.Barrier(4)

    def work(n: int) -> None:
        with printed_by_this_thread() as printed:
            start.wait()
            for _ in range(50):
                print(f"thread-{n}")
        captured[n] = "".join(printed)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for n, text in captured.items():
        assert text.split() == [f"thread-{n}"] * 50


def test_printing_goes_on_when_the_stream_the_capture_replaced_was_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stdout", replaced)

    with printed_by_this_thread() as printed:
        replaced.close()  # a test runner's capture ends while the stack's threads still print
        print("still printed")

    assert "".join(printed) == "still printed\n"


def test_a_tee_swapped_out_of_stdout_stays_whole_for_a_thread_still_printing_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``print`` borrows sys.stdout: a server thread may still write to a tee a test runner just swapped out."""
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with printed_by_this_thread():
        pass  # an invocation put the tee in sys.stdout; now only sys.stdout holds it
    swapped_out = weakref.ref(sys.stdout)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # the runner restores its own stream
    gc.collect()
    tee = swapped_out()
    assert tee is not None, "the tee was freed while a thread could still be printing to it"

    with printed_by_this_thread() as printed:
        tee.write("still kept\n")  # the late write of a thread that looked sys.stdout up before the swap

    assert "".join(printed) == "still kept\n"


class _Stack:
    def __init__(self) -> None:
        self.output_listeners: list[Any] = []


def _get(path: str, accept: str = "") -> LocalRequest:
    return LocalRequest("GET", path, "", {"accept": accept} if accept else {}, b"")


def test_the_page_shows_the_funnel_and_counters_and_json_is_the_same_data() -> None:
    stack = _Stack()
    board = metrics.attach(stack)  # type: ignore[arg-type]
    assert stack.output_listeners == [board.read]
    _invoke(board, {"metrics": {"CustomersClaimed": 1, "ClaimsExpired": 1}, "dimensions": {"stage": "<dev>"}})

    page = metrics.metrics_page(stack, _get(metrics.PAGE_PATH))  # type: ignore[arg-type]
    as_json = metrics.metrics_page(stack, _get(metrics.PAGE_PATH, "application/json"))  # type: ignore[arg-type]
    data = metrics.metrics_json(stack, _get(metrics.JSON_PATH))  # type: ignore[arg-type]

    text = page.body.decode()
    assert dict(page.headers)["Content-Type"].startswith("text/html")
    assert "<h1>Local metrics</h1>" in text
    assert "CustomersClaimed" in text
    assert "stage=&lt;dev&gt;" in text  # escaped
    assert text.index("Added") < text.index("Consent requested") < text.index("Completed")
    assert json.loads(as_json.body) == json.loads(data.body)
    assert dict(data.headers)["Content-Type"] == "application/json"
    assert json.loads(data.body)["beside_the_funnel"][1] == {
        "step": "Expired",
        "metrics": ["ClaimsExpired"],
        "value": 1,
    }


def test_the_local_funnel_names_metrics_the_service_emits() -> None:
    """The page's funnel and what leaves it are metrics of docs/operations.md, the dashboard's funnel steps."""
    from mci.domain import metrics as business

    source = Path(business.__file__).read_text(encoding="utf-8")
    emitted = set(re.findall(r'"([A-Z][A-Za-z]+)"', source))
    named = {name for _, names in (*metrics.FUNNEL, *metrics.BESIDE_THE_FUNNEL) for name in names}
    assert named <= emitted, named - emitted
    assert [names for _, names in metrics.FUNNEL][1] == ("ConsentsRequested",)  # the dashboard's "Consent requested"
