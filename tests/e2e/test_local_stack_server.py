"""The local stack's HTTP server under a burst of connections, and how it stops (SIGTERM, Ctrl-C).

Everything on 127.0.0.1; each test is bounded in connections and seconds.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ROOT, StackClient, _wait_until_ready, free_port, running_stack

pytestmark = pytest.mark.e2e

BURST = 200
STOP_SECONDS = 5.0


def _get(url: str, barrier: threading.Barrier) -> int | BaseException:
    """One new connection, opened when the whole burst is ready: its status, or what went wrong."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        barrier.wait()
        connection.request("GET", "/_local/clock", headers={"Connection": "close"})
        return connection.getresponse().status
    except BaseException as error:  # counted by the test
        return error
    finally:
        connection.close()


def test_a_burst_of_simultaneous_connections_is_answered_none_reset() -> None:
    with running_stack(LOCAL_SWEEP_SECONDS="0") as client:
        barrier = threading.Barrier(BURST)
        results: list[int | BaseException] = []
        lock = threading.Lock()

        def run() -> None:
            result = _get(client.url, barrier)
            with lock:
                results.append(result)

        threads = [threading.Thread(target=run) for _ in range(BURST)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    failures = [r for r in results if r != 200]
    assert len(results) == BURST
    assert not failures, f"{len(failures)} of {BURST} connections failed: {failures[:5]}"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_server_stops_promptly_on_a_signal_while_busy(stop_signal: signal.Signals) -> None:
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "POWERTOOLS_"))}
    # The default background loops: the sweeper every minute, the events feed every second.
    environment.pop("LOCAL_SWEEP_SECONDS", None)
    environment.pop("LOCAL_EVENTS_POLL_SECONDS", None)
    environment.update({"PORT": str(port), "PYTHONUNBUFFERED": "1", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    environment["PYTHONPATH"] = str(ROOT / "shared")  # as `make run` sets it
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        sockets: list[socket.socket] = []
        try:
            client = StackClient(f"http://127.0.0.1:{port}")
            _wait_until_ready(process, client, log)
            # In flight: a request whose body has not all arrived, and an idle keep-alive connection.
            unfinished = socket.create_connection(("127.0.0.1", port), timeout=10)
            unfinished.sendall(
                b"POST /_local/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            idle = socket.create_connection(("127.0.0.1", port), timeout=10)
            idle.sendall(b"GET /_local/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200"), "the keep-alive request was not answered"
            sockets += [unfinished, idle]
            # And requests arriving while the signal does.
            stop_traffic = threading.Event()

            def traffic() -> None:
                while not stop_traffic.is_set():
                    try:
                        client.request("POST", "/_local/sweep", timeout=5)
                    except OSError:
                        return

            sender = threading.Thread(target=traffic, daemon=True)
            sender.start()
            time.sleep(0.5)
            signalled = time.monotonic()
            process.send_signal(stop_signal)
            try:
                returncode = process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                returncode = None
            took = time.monotonic() - signalled
            stop_traffic.set()
            sender.join(timeout=10)
        finally:
            for open_socket in sockets:
                open_socket.close()
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert returncode == 0, f"{stop_signal.name}: exit {returncode} after {took:.1f}s\n{output[-3000:]}"
    assert took < STOP_SECONDS
    assert "Local stack stopped." in output
    assert "Traceback" not in output, output[-3000:]
