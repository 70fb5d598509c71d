"""Lambda's side of the local stack: a function's execution environment and the context object it passes.

``FakeLambdaContext`` is the one fake context of the repository: the local stack, the tests' ``lambda_context``
fixture and the benchmarks build it.

What a handler prints during an invocation (the CloudWatch EMF lines Powertools Metrics prints at its end, log
lines) is what Lambda sends to CloudWatch Logs: ``LocalFunction.invoke(event, on_output=...)`` hands it over
when the invocation ends, and it still reaches the console. Handlers run in the server's threads, so the
capture is per thread (``printed_by_this_thread``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from local.aws_env import ACCOUNT_ID, REGION
from local.cloudformation import FUNCTION_TYPE

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class FakeLambdaContext:
    """The part of the Lambda context object handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 10
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_stream_name: str = "local"
    started_at: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class _PerThreadTee(io.TextIOBase):
    """``sys.stdout`` while the local stack captures: everything goes on to the stream it replaced, and what a
    capturing thread writes is also kept for that thread."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        kept: list[str] | None = getattr(_CAPTURES, "kept", None)
        if kept is not None:
            kept.append(text)
        try:
            return self.stream.write(text)
        except ValueError:  # the stream it replaced was closed since (a test runner's capture): the console
            return sys.__stdout__.write(text) if sys.__stdout__ is not None else len(text)

    def flush(self) -> None:
        with contextlib.suppress(ValueError):
            self.stream.flush()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.stream, "encoding", "utf-8"))

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


_TEE_LOCK = threading.Lock()
# What each capturing thread keeps, for the process: whichever tee a thread prints through, it is kept.
_CAPTURES = threading.local()
# Every tee ever put in sys.stdout, kept alive: ``print`` borrows sys.stdout, so a server thread can still be
# writing to a tee another thread (a test runner's capture) has just swapped out; freed, it has lost its state.
_TEES: list[_PerThreadTee] = []


def _tee() -> _PerThreadTee:
    """The tee in ``sys.stdout``, put there on first use (again if something replaced it since)."""
    with _TEE_LOCK:
        current = sys.stdout
        if not isinstance(current, _PerThreadTee):
            current = _PerThreadTee(current)
            _TEES.append(current)
            sys.stdout = current
        return current


@contextlib.contextmanager
def printed_by_this_thread() -> Iterator[list[str]]:
    """What this thread prints to ``sys.stdout`` inside the block, as written (it still reaches the console)."""
    _tee()
    kept: list[str] = []
    outer = getattr(_CAPTURES, "kept", None)
    _CAPTURES.kept = kept
    try:
        yield kept
    finally:
        _CAPTURES.kept = outer
        if outer is not None:
            outer.extend(kept)


class LocalFunction:
    """One function's execution environment: its handler, called one event at a time as on Lambda."""

    def __init__(self, logical_id: str, code_uri: str, handler: str, memory: int, timeout: int) -> None:
        module_name, _, attribute = handler.rpartition(".")
        package = ".".join(part for part in code_uri.strip("/").split("/") if part)
        self.logical_id = logical_id
        self.module_name = f"{package}.{module_name}" if package else module_name
        self.attribute = attribute
        self.memory = memory
        self.timeout = timeout
        self.lock = threading.Lock()
        self._handler: Handler | None = None

    def load(self) -> Handler:
        if self._handler is None:
            handler: Handler = getattr(importlib.import_module(self.module_name), self.attribute)
            self._handler = handler
        return self._handler

    def invoke(self, event: dict[str, Any], on_output: Callable[[str], None] | None = None) -> Any:
        """Call the handler with ``event``; ``on_output`` gets what it printed (also when it raised)."""
        # A module-level resolver holds the current event, so one invocation at a time per function.
        with self.lock:
            handler = self.load()
            context = FakeLambdaContext(self.logical_id, self.memory, self.timeout)
            if on_output is None:
                return handler(event, context)
            with printed_by_this_thread() as printed:
                try:
                    return handler(event, context)
                finally:
                    on_output("".join(printed))


def template_functions(template: Mapping[str, Any]) -> dict[str, LocalFunction]:
    """Every function of the template, by logical id, with the Globals it inherits."""
    defaults = dict((template.get("Globals") or {}).get("Function") or {})
    found: dict[str, LocalFunction] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != FUNCTION_TYPE:
            continue
        properties = {**defaults, **(resource.get("Properties") or {})}
        found[logical_id] = LocalFunction(
            logical_id,
            code_uri=str(properties.get("CodeUri", "")),
            handler=str(properties.get("Handler", "app.lambda_handler")),
            memory=int(properties.get("MemorySize", 128)),
            timeout=int(properties.get("Timeout", 3)),
        )
    return found
