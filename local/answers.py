"""One answer of the API, however it was reached: a handler's result in process, or an HTTP response.

The tests (``tests.support.api``, the access matrix), the bench and the local stack's own tests read
answers through this one class. The CLI (``cli/``) keeps its own: it is an installable package that
must not import the repository's ``local/``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    """``body`` is the JSON read when the Content-Type says JSON, otherwise the text; header names are lower case."""

    status: int
    headers: Mapping[str, str]
    text: str
    body: Any
    raw: Any = None  # the handler's own result, when the answer came from a handler called in process

    @classmethod
    def of_result(cls, raw: Any) -> Answer:
        """A Lambda proxy result. Any other result (the sweep's report, a stream batch's failures) is a 200
        whose body is that result."""
        if not isinstance(raw, dict) or "statusCode" not in raw:
            return cls(200, {}, "", raw, raw)
        text = raw.get("body") or ""
        if raw.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        return cls.of_text(int(raw["statusCode"]), (raw.get("headers") or {}).items(), text, raw)

    @classmethod
    def of_http(cls, status: int, headers: Iterable[tuple[str, str]], content: bytes) -> Answer:
        """An HTTP response as it came over the wire: bytes that are not UTF-8 are replaced, and a body that
        says JSON but is none stays text (what is on the wire is what a test asserts on)."""
        text, pairs = content.decode("utf-8", errors="replace"), list(headers)
        try:
            return cls.of_text(status, pairs, text)
        except ValueError:
            return cls(status, {str(name).lower(): str(value) for name, value in pairs}, text, text)

    @classmethod
    def of_text(cls, status: int, headers: Iterable[tuple[str, str]], text: str, raw: Any = None) -> Answer:
        """Raises ``ValueError`` when the Content-Type says JSON and the text is none (a handler's bug)."""
        lowered = {str(name).lower(): str(value) for name, value in headers}
        is_json = text and "json" in lowered.get("content-type", "")
        return cls(status, lowered, text, json.loads(text) if is_json else text, raw)

    @property
    def code(self) -> str | None:
        """The problem code of an error answer (None when the body is no JSON object)."""
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def content_type(self) -> str:
        """The media type, without parameters, lower case."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body read as JSON whatever the Content-Type says (raises when it is not JSON)."""
        return json.loads(self.text)
