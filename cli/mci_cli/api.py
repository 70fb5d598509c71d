"""The API over HTTP: JSON in and out, problem details read, throttling and dropped connections retried.

Every request the client sends is safe to repeat: reads and previews change nothing, and every write
(reference-data batches, their dry runs, adds) carries an Idempotency-Key made from the request by
``idempotency_key``, so a repeat is answered with the first answer and never applied twice. So 429,
502-504, an in-progress idempotent request and, once the API has answered at least once, network
failures (an answer lost after the API acted) are retried with backoff before the client gives up.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mci_cli import __version__

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0


def idempotency_key(prefix: str, request: Any) -> str:
    """The same request, the same key: whoever sends it, however often. ``request`` must be all the API
    compares for the key (it refuses the same key with another request: 422 idempotency_key_reused)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return prefix + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ApiError(Exception):
    """The API refused the caller or could not be reached (exit code 3)."""


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        """The problem code of an error answer ('' when the body is no problem details)."""
        return str(self.body.get("code", "")) if isinstance(self.body, dict) else ""

    @property
    def field_errors(self) -> list[dict[str, str]]:
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    def failure(self) -> ApiError:
        """This answer as the error a command stops with."""
        detail = ""
        if isinstance(self.body, dict):
            detail = str(self.body.get("detail") or self.body.get("message") or "")
        elif isinstance(self.body, str):
            detail = self.body.strip()[:300]
        if self.status == 401:
            hint = self.headers.get("www-authenticate", "")
            return ApiError(
                f"the API refused the token (401 Unauthorized{': ' + hint if hint else ''}). "
                "Is it expired, or for another stage? Pass a fresh one with --token or MCI_TOKEN."
            )
        if self.status == 403:
            return ApiError(f"the token lacks a role this needs (403): {detail or 'forbidden'}")
        code = f" {self.code}" if self.code else ""
        return ApiError(f"{self.method} {self.path} answered {self.status}{code}: {detail or 'no detail'}")


@dataclass
class ApiClient:
    """One base URL and bearer token. ``request`` returns every HTTP answer; only the network raises."""

    base_url: str
    token: str | None = None
    timeout: float = 30.0
    attempts: int = 6
    sleep: Callable[[float], None] = time.sleep
    user_agent: str = f"mci-cli/{__version__}"
    _opener: urllib.request.OpenerDirector = field(init=False, repr=False)
    _reached: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"the API URL must be http(s)://host[:port][/base], not {self.base_url!r}")
        self.base_url = self.base_url.rstrip("/")
        # The local stack is on loopback: never through a proxy from the environment.
        handlers = [urllib.request.ProxyHandler({})] if _loopback(parsed) else []
        self._opener = urllib.request.build_opener(*handlers)

    def get(self, path: str, query: Mapping[str, str | int] | None = None) -> Answer:
        return self.request("GET", path, query=query)

    def post(
        self,
        path: str,
        body: Any,
        *,
        query: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        return self.request("POST", path, body, query=query, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({name: str(value) for name, value in query.items()})
        sent = {"Accept": "application/json", "User-Agent": self.user_agent}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        for attempt in range(1, self.attempts + 1):
            try:
                answer = self._send(method, path, url, data, sent)
            except (urllib.error.URLError, OSError) as error:
                # Never reached yet: most likely a wrong URL or a stopped stack, so say so at once.
                if attempt == self.attempts or not self._reached:
                    reason = getattr(error, "reason", error)
                    raise ApiError(f"cannot reach the API at {self.base_url}: {reason}") from None
                self.sleep(_backoff(attempt))
                continue
            self._reached = True
            if attempt < self.attempts and _retry(answer):
                self.sleep(max(_retry_after(answer), _backoff(attempt)))
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, path: str, url: str, data: bytes | None, headers: dict[str, str]) -> Answer:
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return _answer(method, path, response.status, response.headers.items(), response.read())
        except urllib.error.HTTPError as error:
            with error:
                return _answer(method, path, error.code, error.headers.items(), error.read())
        except TimeoutError as error:
            raise urllib.error.URLError(f"no answer within {self.timeout:g} s") from error


def _loopback(parsed: urllib.parse.SplitResult) -> bool:
    return (parsed.hostname or "") in ("127.0.0.1", "localhost", "::1")


def _answer(method: str, path: str, status: int, headers: Any, raw: bytes) -> Answer:
    lowered = {str(name).lower(): str(value) for name, value in headers}
    text = raw.decode("utf-8", errors="replace")
    body: Any = text
    if "json" in lowered.get("content-type", "") and text.strip():
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    return Answer(method, path, status, lowered, body)


def _retry(answer: Answer) -> bool:
    # 409 idempotency_in_progress: the first request with this key is still running (or died mid-way
    # and its lock has not expired yet); its result will be replayed.
    return answer.status in RETRY_STATUSES or (answer.status == 409 and answer.code == "idempotency_in_progress")


def _retry_after(answer: Answer) -> float:
    """The pause the API asked for (seconds only; 0 when it named none)."""
    try:
        seconds = float(answer.headers.get("retry-after", ""))
    except ValueError:
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _backoff(attempt: int) -> float:
    """0.5, 1, 2, 4, 8, 8... seconds: about 15 s over the default six attempts, long enough for a
    throttled route, a busy table or an idempotent request still in progress to clear."""
    return float(min(0.5 * 2 ** (attempt - 1), 8.0))
