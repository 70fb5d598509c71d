"""Load: concurrent clients adding customers on the local stack (``python -m local``) over HTTP.

The stack runs in its own process, as a person runs it (real handlers, moto in server mode, the JWT
authorizer). Operations load numbered customers first through ``POST /ops/reference-data``, so every
add is for a customer nobody has added: each should answer 201. One client alone first (the warm-up,
and the latency without queueing), then all clients together for the measured window.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from bench.common import ROOT, clean_environment, import_paths, median, ms, percentile, ratio

HOST = "127.0.0.1"
STARTUP_SECONDS = 60.0
CUSTOMERS_PER_LOAD = 150  # two records each: one reference-data request stays well under the 64 KB body limit
CONTOSO = "p-contoso-partners"
OPERATIONS = "mci-operations"
MIGRATE = "e-azure-migrate"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, status: str) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] += 1


class Client:
    """One keep-alive connection to the stack."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection(HOST, port, timeout=60)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json", **(headers or {})}
        try:
            self.connection.request(method, path, body=data, headers=sent)
            response = self.connection.getresponse()
            text = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=60)
            raise
        return response.status, text

    def close(self) -> None:
        self.connection.close()


def _start(port: int, log: IO[bytes], background: bool) -> subprocess.Popen[bytes]:
    environment = clean_environment(
        PORT=str(port),
        PYTHONPATH=os.pathsep.join(import_paths()),
        PYTHONUNBUFFERED="1",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    if not background:
        environment.update(LOCAL_SWEEP_SECONDS="0", LOCAL_EVENTS_POLL_SECONDS="0")
    return subprocess.Popen(
        [sys.executable, "-m", "local"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
    )


def _wait(process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            client = Client(port)
            try:
                if client.request("GET", "/_local/clock")[0] == 200:
                    return
            finally:
                client.close()
        time.sleep(0.2)
    log.seek(0)
    raise RuntimeError(f"the local stack did not answer (exit {process.poll()}): {log.read().decode()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _token(client: Client, partner_id: str, roles: list[str]) -> str:
    status, text = client.request("POST", "/_local/tokens", {"partner_id": partner_id, "roles": roles})
    if status != 200:
        raise RuntimeError(f"no token: {status} {text[:200]!r}")
    return str(json.loads(text)["token"])


def _load_customers(client: Client, token: str, count: int) -> None:
    from tests.support.numbered_customers import numbered_customers

    for start in range(1, count + 1, CUSTOMERS_PER_LOAD):
        data = numbered_customers(range(start, min(start + CUSTOMERS_PER_LOAD, count + 1)))
        status, text = client.request("POST", "/ops/reference-data", data, {"Authorization": f"Bearer {token}"})
        if status != 200:
            raise RuntimeError(f"reference data refused: {status} {text[:300]!r}")


def _drive(port: int, token: str, *, clients: int, seconds: float, numbers: Any, limit: int) -> tuple[Outcome, float]:
    from tests.support.numbered_customers import numbered_body

    outcome = Outcome()
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()

    def next_number() -> int | None:
        with lock:
            number = next(numbers)
        return number if number <= limit else None

    def work() -> None:
        client = Client(port)
        try:
            while time.monotonic() < stop_at:
                number = next_number()
                if number is None:
                    outcome.add(0.0, "customers exhausted")
                    return
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"load-{number}"}
                started = time.perf_counter()
                try:
                    status, _ = client.request("POST", "/customers", numbered_body(number, MIGRATE), headers)
                    outcome.add(time.perf_counter() - started, str(status))
                except (OSError, http.client.HTTPException) as error:
                    outcome.add(time.perf_counter() - started, type(error).__name__)
        finally:
            client.close()

    threads = [threading.Thread(target=work, name=f"load-{i}") for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome, time.monotonic() - started


def _figures(outcome: Outcome, elapsed: float) -> dict[str, Any]:
    ok = outcome.statuses.get("201", 0)
    total = sum(outcome.statuses.values())
    return {
        "requests": total,
        "created": ok,
        "errors": total - ok,
        "statuses": dict(outcome.statuses),
        "seconds": round(elapsed, 1),
        "throughput_per_second": round(ok / elapsed, 2) if elapsed else 0.0,
        "p50_ms": ms(median(outcome.latencies)),
        "p99_ms": ms(percentile(outcome.latencies, 0.99)),
        "max_ms": ms(max(outcome.latencies, default=0.0)),
    }


@dataclass
class Stack:
    """A running local stack with customers loaded and a partner's token, until ``close``."""

    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    partner_token: str
    customers: int
    background: bool

    def close(self) -> None:
        try:
            _stop(self.process)
        finally:
            self.log.close()


def prepare(*, customers: int, background: bool = True, progress: Callable[[str], None] = print) -> Stack:
    """Start ``python -m local`` and load ``customers`` numbered customers through the API.

    ``background``: the stack's own sweep and event-feed threads run, as with ``make run``.
    """
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the stack
    process = _start(port, log, background)
    try:
        _wait(process, port, log)
        admin = Client(port)
        try:
            partner = _token(admin, CONTOSO, ["incentives_user"])
            _load_customers(admin, _token(admin, OPERATIONS, ["mci_operations"]), customers)
        finally:
            admin.close()
    except BaseException:
        _stop(process)
        log.close()
        raise
    progress(f"  load: stack on port {port}, {customers} customers loaded")
    return Stack(port, process, log, partner, customers, background)


def measure(
    *,
    clients: int,
    seconds: float,
    alone_seconds: float,
    customers: int,
    background: bool = True,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    stack = prepare(customers=customers, background=background, progress=progress)
    return drive(stack, clients=clients, seconds=seconds, alone_seconds=alone_seconds)


def drive(stack: Stack, *, clients: int, seconds: float, alone_seconds: float) -> dict[str, Any]:
    """One client alone, then ``clients`` together for ``seconds``; the stack is closed after."""
    try:
        numbers = itertools.count(1)
        alone, alone_elapsed = _drive(
            stack.port, stack.partner_token, clients=1, seconds=alone_seconds, numbers=numbers, limit=stack.customers
        )
        together, elapsed = _drive(
            stack.port, stack.partner_token, clients=clients, seconds=seconds, numbers=numbers, limit=stack.customers
        )
    finally:
        stack.close()
    one = _figures(alone, alone_elapsed)
    many = _figures(together, elapsed)
    return {
        "what": f"{clients} clients adding distinct customers (POST /customers with an Idempotency-Key) "
        "on the local stack",
        "target": "zero errors",
        "clients": clients,
        "customers_loaded": stack.customers,
        "stack_background_threads": stack.background,
        "one_client": one,
        "concurrent": many,
        "p50_ratio_to_one_client": ratio(many["p50_ms"], one["p50_ms"]),
        "throughput_ratio_to_one_client": ratio(many["throughput_per_second"], one["throughput_per_second"]),
        "met": many["errors"] == 0 and one["errors"] == 0,
    }
