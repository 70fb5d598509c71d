"""The local stack as a person runs it: ``python -m local`` in its own process, driven over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from local.answers import Answer

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0


class StackClient:
    """urllib against the stack: every answer, 4xx and 5xx included, comes back as an Answer."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Answer:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Answer.of_http(response.status, response.headers.items(), response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Answer.of_http(error.code, error.headers.items(), error.read())

    def token(self, partner_id: str, roles: list[str], **options: Any) -> str:
        answer = self.request("POST", "/_local/tokens", {"partner_id": partner_id, "roles": roles, **options})
        assert answer.status == 200, answer.text
        return str(answer.json()["token"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(process: subprocess.Popen[bytes], client: StackClient, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError):
            if client.request("GET", "/_local/clock", timeout=1.0).status == 200:
                return
        time.sleep(0.1)
    log.seek(0)
    output = log.read().decode(errors="replace")
    pytest.fail(f"the local stack did not answer (exit code {process.poll()}):\n{output}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the server stops moto and exits cleanly
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def running_stack(**environment_overrides: str) -> Iterator[StackClient]:
    """``python -m local`` on a free port until the block ends, stopped even when it fails."""
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "POWERTOOLS_"))}
    environment.update({"PORT": str(port), "PYTHONUNBUFFERED": "1", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    environment["PYTHONPATH"] = str(ROOT / "shared")  # as `make run` sets it
    environment.update(environment_overrides)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            client = StackClient(f"http://127.0.0.1:{port}")
            _wait_until_ready(process, client, log)
            yield client
        finally:
            _stop(process)
        assert process.returncode == 0, f"the local stack exited with {process.returncode}"


@pytest.fixture(scope="session")
def local_stack() -> Iterator[StackClient]:
    """One subprocess for the whole e2e tier, stopped even when a test fails."""
    with running_stack() as client:
        yield client
