"""The operations CLI's edges: arguments and exit codes, the HTTP client's retries and messages, the progress bar.

The API here is a scripted HTTP server on loopback; the CLI against the real local stack is tests/e2e/test_cli.py.
"""

from __future__ import annotations

import functools
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mci_cli import export, reference_data
from mci_cli import main as cli_main
from mci_cli.api import ApiClient, ApiError
from mci_cli.progress import Progress

# ---------------------------------------------------------------- a scripted API


DROP = 0


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ScriptedApi:
    """Answers each request with the next reply of ``replies`` (the last one repeats); records requests."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)


@pytest.fixture
def api() -> Iterator[ScriptedApi]:
    scripted = ScriptedApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            scripted.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            reply = scripted.replies.pop(0) if len(scripted.replies) > 1 else scripted.replies[0]
            if reply.status == DROP:
                self.close_connection = True  # no answer at all: the client sees the connection drop
                return
            payload = json.dumps(reply.body).encode() if reply.body is not None else b""
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _reply

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scripted.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield scripted
    finally:
        server.shutdown()
        server.server_close()


def client(url: str, **options: Any) -> ApiClient:
    return ApiClient(url, "t0ken", sleep=lambda seconds: None, **options)


# ---------------------------------------------------------------- the HTTP client


def test_throttling_and_busy_dependencies_are_retried_after_their_pause(api: ScriptedApi) -> None:
    pauses: list[float] = []
    api.replies = [
        Reply(429, {"message": "Too Many Requests"}),
        Reply(503, {"code": "dependency_unavailable"}, {"Retry-After": "2"}),
        Reply(409, {"code": "idempotency_in_progress"}, {"Retry-After": "1"}),
        Reply(201, {"claims": []}),
    ]
    answer = ApiClient(api.url, "t0ken", sleep=pauses.append).post("/customers", {"a": "ñ"}, headers={"X-A": "b"})
    assert (answer.status, answer.body) == (201, {"claims": []})
    assert pauses == [0.5, 2.0, 2.0]  # what Retry-After asks, growing when it asks less
    method, path, headers, body = api.requests[-1]
    assert (method, path, body) == ("POST", "/customers", {"a": "ñ"})
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["content-type"] == "application/json"
    assert headers["x-a"] == "b"
    assert headers["user-agent"].startswith("mci-cli/")


def test_a_conflict_is_an_answer_not_a_retry(api: ScriptedApi) -> None:
    api.replies = [Reply(409, {"code": "duplicate_claim"})]
    answer = client(api.url).post("/customers", {})
    assert (answer.status, answer.code) == (409, "duplicate_claim")
    assert len(api.requests) == 1


def test_retries_end(api: ScriptedApi) -> None:
    api.replies = [Reply(503, {"code": "dependency_unavailable", "detail": "busy"})]
    answer = client(api.url, attempts=3).get("/engagements", {"tab": "eligible", "limit": 5})
    assert answer.status == 503
    assert len(api.requests) == 3
    assert api.requests[0][1] == "/engagements?tab=eligible&limit=5"
    assert str(answer.failure()) == "GET /engagements answered 503 dependency_unavailable: busy"


def test_an_unreachable_api_is_an_api_error_at_once() -> None:
    pauses: list[float] = []
    with pytest.raises(ApiError, match=r"cannot reach the API at http://127\.0\.0\.1:9"):
        ApiClient("http://127.0.0.1:9", "t", sleep=pauses.append).get("/engagements")
    assert pauses == []  # a wrong URL or a stopped stack: no point waiting


def test_a_dropped_connection_is_retried_once_the_api_has_answered(api: ScriptedApi) -> None:
    pauses: list[float] = []
    api.replies = [Reply(200, {}), Reply(DROP), Reply(DROP), Reply(200, {"ok": True})]
    reached = ApiClient(api.url, "t", sleep=pauses.append)
    assert reached.get("/a").status == 200
    assert reached.get("/b").body == {"ok": True}
    assert pauses == [0.5, 1.0]
    api.replies = [Reply(DROP)]
    with pytest.raises(ApiError, match="cannot reach the API"):
        reached.get("/c")
    assert len(pauses) == 2 + 5


def test_a_reference_data_batch_whose_answer_is_lost_is_sent_again_with_its_key(
    api: ScriptedApi, tmp_path: Path
) -> None:
    source = tmp_path / "domains.csv"
    source.write_text("domain,tenant_id\na.example,t\n", encoding="utf-8")
    counts = {"engagements": 0, "locations": 0, "customers": 0, "domains": 1}
    api.replies = [
        Reply(200, counts),  # the dry run
        Reply(DROP),  # the load, done by the API, its answer lost
        Reply(409, {"code": "idempotency_in_progress"}, {"Retry-After": "1"}),
        Reply(200, counts),  # the first answer, replayed
    ]
    result = reference_data.load(client(api.url), [str(source)])
    assert result.counts == counts
    paths = [path for _, path, _, _ in api.requests]
    assert paths == ["/ops/reference-data?dry_run=true"] + ["/ops/reference-data"] * 3
    keys = [headers.get("idempotency-key") for _, _, headers, _ in api.requests]
    assert keys[0] is not None
    assert keys[0].startswith(reference_data.KEY_PREFIX)
    assert keys[1:] == [keys[1]] * 3  # the same batch again: the same key, so the API answers, not loads
    assert keys[1] != keys[0]  # the dry run is another request: another key
    assert [body for _, _, _, body in api.requests] == [{"domains": [{"domain": "a.example", "tenant_id": "t"}]}] * 4


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            Reply(401, {"message": "Unauthorized"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}),
            'the API refused the token (401 Unauthorized: Bearer error="invalid_token"). Is it expired, or for '
            "another stage? Pass a fresh one with --token or MCI_TOKEN.",
        ),
        (
            Reply(403, {"detail": "Needs mci_operations"}),
            "the token lacks a role this needs (403): Needs mci_operations",
        ),
        (Reply(500, None), "GET /x answered 500: no detail"),
    ],
)
def test_refusals_read_as_sentences(api: ScriptedApi, reply: Reply, message: str) -> None:
    api.replies = [reply]
    assert str(client(api.url).get("/x").failure()) == message


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com", "file:///etc/passwd"])
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="must be http"):
        ApiClient(url, "t")


# ---------------------------------------------------------------- the command line


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCI_API_URL", raising=False)
    monkeypatch.delenv("MCI_TOKEN", raising=False)
    monkeypatch.setattr(cli_main, "ApiClient", functools.partial(ApiClient, attempts=1))


@pytest.mark.parametrize(
    ("argv", "teaches"),
    [
        ([], "exit codes:"),
        (["reference-data", "load"], "Columns, required ones marked *"),
        (["reference-data", "load"], "Idempotency-Key derived from the batch's request"),
        (["customers", "add-bulk"], "Idempotency-Key derived from"),
        (["customers", "export"], "following the API's"),
        (["local-token"], "POST /_local/tokens"),
    ],
)
def test_help_teaches(argv: list[str], teaches: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(*argv, "--help")[0] == 0
    assert teaches in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["customers"],
        ["customers", "export", "e-1"],
        ["customers", "export", "e-1", "--tab", "all"],
        ["customers", "export", "e-1", "--tab", "eligible", "--page-size", "101"],
        ["reference-data", "load", "--batch-size", "0", "f.csv"],
        ["reference-data", "load", "--batch-size", "x", "f.csv"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(*argv)[0] == 2
    assert "usage: mci" in capsys.readouterr().err


def test_a_missing_token_is_a_usage_error() -> None:
    code, out, err = run("customers", "export", "e-1", "--tab", "eligible")
    assert (code, out) == (2, "")
    assert err.startswith("mci: error: no token: set MCI_TOKEN or pass --token")


def test_the_results_never_overwrite_the_input(tmp_path: Path) -> None:
    source = tmp_path / "n.csv"
    code, _, err = run("customers", "add-bulk", str(source), "--results", str(source), "--token", "t")
    assert (code, err) == (2, "mci: error: --results must not be the input file\n")


def test_a_bad_api_url_is_a_usage_error() -> None:
    code, _, err = run("customers", "export", "e-1", "--tab", "eligible", "--token", "t", "--api-url", "localhost")
    assert code == 2
    assert "the API URL must be http(s)://" in err


def test_the_environment_gives_url_and_token(api: ScriptedApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCI_API_URL", api.url + "/")
    monkeypatch.setenv("MCI_TOKEN", "from-env")
    api.replies = [Reply(200, {"items": [], "next_cursor": None})]
    code, out, _ = run("customers", "export", "e 1/x", "--tab", "complete", "--page-size", "7")
    assert code == 0
    assert out == ",".join(export.COLUMNS) + "\r\n"
    _, path, headers, _ = api.requests[0]
    assert path == "/engagements/e%201%2Fx/customers?tab=complete&limit=7"
    assert headers["authorization"] == "Bearer from-env"


def test_an_unreachable_api_exits_3() -> None:
    code, _, err = run(
        "customers", "export", "e-1", "--tab", "eligible", "--token", "t", "--api-url", "http://127.0.0.1:9"
    )
    assert code == 3
    assert err.startswith("mci: error: cannot reach the API at http://127.0.0.1:9")


def test_export_follows_cursors_and_a_failed_export_leaves_no_file(api: ScriptedApi, tmp_path: Path) -> None:
    item = {
        "kind": "claim",
        "claim_id": "c1",
        "friendly_name": "A",
        "customer": {"type": "tpid", "value": "1"},
        "state": "completed",
        "days_left": 0,
        "actions": [],
        "reasons": [{"code": "x", "message": "y"}],
    }
    api.replies = [
        Reply(200, {"items": [item], "next_cursor": "p2"}),
        Reply(200, {"items": [{**item, "claim_id": "c2"}], "next_cursor": "p3", "note": "a note"}),
        Reply(200, {"items": [], "next_cursor": None, "note": "a note"}),
    ]
    target = tmp_path / "out.csv"
    code, out, err = run(
        "customers", "export", "e-1", "--tab", "complete", "--token", "t", "--api-url", api.url, "-o", str(target)
    )
    assert (code, out, err) == (0, f"2 rows exported to {target}\n", "note: a note\n")
    assert [p for _, p, _, _ in api.requests] == [
        "/engagements/e-1/customers?tab=complete&limit=100",
        "/engagements/e-1/customers?tab=complete&limit=100&cursor=p2",
        "/engagements/e-1/customers?tab=complete&limit=100&cursor=p3",
    ]
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[1:] == ["claim,c1,,A,tpid,1,completed,,0,,x,y", "claim,c2,,A,tpid,1,completed,,0,,x,y"]

    api.replies = [
        Reply(200, {"items": [item], "next_cursor": "again"}),
        Reply(200, {"items": [], "next_cursor": "again"}),
    ]
    failed = tmp_path / "failed.csv"
    code, _, err = run(
        "customers", "export", "e-1", "--tab", "complete", "--token", "t", "--api-url", api.url, "-o", str(failed)
    )
    assert code == 3
    assert "the same cursor twice" in err
    assert list(tmp_path.iterdir()) == [target]


def test_local_token_only_from_the_local_stack(api: ScriptedApi) -> None:
    api.replies = [Reply(200, {"token": "abc"})]
    assert run("local-token", "--partner", "p-1", "--role", "a", "--role", "b", "--api-url", api.url) == (
        0,
        "abc\n",
        "",
    )
    assert api.requests[0][3] == {"partner_id": "p-1", "roles": ["a", "b"]}
    api.replies = [Reply(404, {"message": "Not Found"})]
    code, _, err = run("local-token", "--partner", "p-1", "--role", "a", "--api-url", api.url)
    assert code == 3
    assert "issues no local tokens" in err


def test_ctrl_c_exits_130_and_says_a_rerun_is_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main.export, "export", interrupted)
    code, _, err = run("customers", "export", "e-1", "--tab", "eligible", "--token", "t")
    assert code == 130
    assert "rerunning the same command is safe" in err


# ---------------------------------------------------------------- the progress bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_on_a_terminal_only() -> None:
    terminal = Terminal()
    with Progress("adding", 4, stream=terminal) as progress:
        for _ in range(4):
            progress.advance()
    assert terminal.getvalue().endswith("\radding [##############################] 4/4 100%\n")

    counter = Terminal()
    with Progress("exporting", stream=counter) as progress:
        progress.advance(3)
    assert counter.getvalue().endswith("\rexporting 3\n")

    pipe = io.StringIO()
    with Progress("adding", 4, stream=pipe) as progress:
        progress.advance(4)
    assert pipe.getvalue() == ""
