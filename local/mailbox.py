"""The local mailbox (SPEC §6): the emails the handlers sent through SES, read from moto in this process.

    GET /_local/mailbox          the sent emails as a page, newest first
    GET /_local/mailbox/<n>      email n (1 = the first sent) as its HTML body was sent; its links work
    GET /_local/mailbox.json     {items: [{id, to, subject, text, html, sent_at, ...}]}, newest first

moto runs in the same process as the local stack (server mode, in a thread), so its SES backend is read
directly. SES v2 sends land in the v1 backend's ``sent_messages``; with Text and Html both sent moto keeps
only the Html, so ``text`` is derived from it. moto records no send time: ``attach`` (called when the
stack starts) wraps that list so every email is stamped with the service clock as it is appended, which
keeps ``sent_at`` consistent with the deadlines the emails state, time travel included.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

from local.api_stack import ApiStack
from local.aws_env import REGION
from local.pages import html_response, page
from local.server import LocalRequest, LocalResponse, local_route

MAILBOX_PATH = "/_local/mailbox"
MESSAGE_PATH = "/_local/mailbox/{n}"
JSON_PATH = "/_local/mailbox.json"
_MESSAGE_NUMBER = re.compile(r"/_local/mailbox/(?P<n>[1-9][0-9]{0,8})")


# ---------------------------------------------------------------- the messages


@dataclass(frozen=True)
class SentEmail:
    """One email as the mailbox shows it."""

    number: int  # 1 for the first email this stack sent
    message_id: str
    sender: str
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    html: str | None
    sent_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.number,
            "message_id": self.message_id,
            "from": self.sender,
            "to": ", ".join(self.to),
            "cc": ", ".join(self.cc),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "sent_at": _iso(self.sent_at),
        }


class _StampedMessages(list[Any]):
    """moto's ``sent_messages``, calling back on every append (moto only ever appends)."""

    def __init__(self, items: Iterable[Any], on_append: Callable[[Any], None]) -> None:
        super().__init__(items)
        self._on_append = on_append

    def append(self, message: Any) -> None:
        self._on_append(message)
        super().append(message)


class Mailbox:
    """The emails one local stack sent: moto's SES backend, plus when each one was sent."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._lock = threading.Lock()
        # By id() of the message, holding the message too, so an id is never reused while it is here.
        self._sent_at: dict[int, tuple[Any, datetime]] = {}
        self._before: dict[int, Any] = {}  # sent before this stack started (another stack of the process)
        self._watched: list[list[Any]] = []

    def watch(self) -> None:
        """Wrap the backend's list (again, if moto was reset since), so new emails are stamped as sent."""
        with self._lock:
            for backend in _ses_backends():
                messages = backend.sent_messages
                if isinstance(messages, _StampedMessages) and any(messages is w for w in self._watched):
                    continue
                if not self._watched:
                    self._before.update((id(message), message) for message in messages)
                stamped = _StampedMessages(messages, self._stamp)
                backend.sent_messages = stamped
                self._watched.append(stamped)

    def _stamp(self, message: Any) -> None:
        self._sent_at[id(message)] = (message, self._now())

    def _sent_time(self, message: Any) -> datetime:
        found = self._sent_at.get(id(message))
        if found is None or found[0] is not message:
            # Appended to a list we did not wrap (moto was reset in between): stamped when first seen.
            found = self._sent_at[id(message)] = (message, self._now())
        return found[1]

    def emails(self) -> list[SentEmail]:
        """Every email this stack sent, newest first."""
        self.watch()
        found: list[SentEmail] = []
        with self._lock:
            sent = [
                message
                for backend in _ses_backends()
                for message in list(backend.sent_messages)
                if self._before.get(id(message)) is not message
            ]
            for number, message in enumerate(sent, start=1):
                found.append(_read(number, message, self._sent_time(message)))
        return found[::-1]

    def email(self, number: int) -> SentEmail | None:
        for found in self.emails():
            if found.number == number:
                return found
        return None


_MAILBOXES: weakref.WeakKeyDictionary[ApiStack, Mailbox] = weakref.WeakKeyDictionary()
_MAILBOXES_LOCK = threading.Lock()


def attach(stack: ApiStack) -> Mailbox:
    """The stack's mailbox, stamping emails from now on (``LocalStack`` calls this as it starts)."""
    with _MAILBOXES_LOCK:
        mailbox = _MAILBOXES.get(stack)
        if mailbox is None:
            mailbox = Mailbox(lambda: _service_now(stack))
            _MAILBOXES[stack] = mailbox
    mailbox.watch()
    return mailbox


def _service_now(stack: ApiStack) -> datetime:
    try:
        return stack.clock.now()
    except RuntimeError:  # not started (or stopped): wall-clock time
        return datetime.now(UTC)


def _ses_backends() -> list[Any]:
    """moto's SES backends of the local region, one per account that has one."""
    from moto.backends import get_backend
    from moto.core.models import DEFAULT_ACCOUNT_ID

    backends = get_backend("ses")
    accounts = list(backends.keys()) or [DEFAULT_ACCOUNT_ID]
    return [backends[account][REGION] for account in accounts]


def _iso(at: datetime | None) -> str | None:
    from mci.domain.clock import isoformat

    return isoformat(at) if at is not None else None


def _read(number: int, message: Any, sent_at: datetime | None) -> SentEmail:
    """A moto message (simple, raw or templated) as a SentEmail."""
    message_id = str(getattr(message, "id", "") or ",".join(getattr(message, "ids", []) or []))
    sender = str(getattr(message, "source", ""))
    if hasattr(message, "raw_data"):
        return _read_raw(number, message_id, sender, message, sent_at)
    destinations = getattr(message, "destinations", None) or {}
    to = _addresses(destinations, "ToAddresses")
    cc = _addresses(destinations, "CcAddresses")
    if hasattr(message, "template"):  # SES v1 templated sends: moto keeps the template name and data
        data = str(getattr(message, "template_data", ""))
        return SentEmail(number, message_id, sender, to, cc, f"(template {message.template})", data, None, sent_at)
    body = str(getattr(message, "body", ""))
    subject = str(getattr(message, "subject", ""))
    if _looks_like_html(body):
        return SentEmail(number, message_id, sender, to, cc, subject, html_to_text(body), body, sent_at)
    return SentEmail(number, message_id, sender, to, cc, subject, body, None, sent_at)


def _addresses(destinations: Any, key: str) -> list[str]:
    if isinstance(destinations, dict):
        return [str(a) for a in destinations.get(key) or []]
    if isinstance(destinations, list) and key == "ToAddresses":  # templated sends keep a flat list
        return [str(a) for a in destinations]
    return []


def _read_raw(number: int, message_id: str, sender: str, message: Any, sent_at: datetime | None) -> SentEmail:
    parsed = email.message_from_string(str(message.raw_data), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    html_body = html_part.get_content() if html_part is not None else None
    text = text_part.get_content() if text_part is not None else html_to_text(html_body or "")
    to = [a.strip() for a in str(parsed.get("To", "")).split(",") if a.strip()]
    if not to:
        to = [str(a) for a in getattr(message, "destinations", []) or []]
    cc = [a.strip() for a in str(parsed.get("Cc", "")).split(",") if a.strip()]
    subject = str(parsed.get("Subject", ""))
    return SentEmail(
        number, message_id, sender or str(parsed.get("From", "")), to, cc, subject, text, html_body, sent_at
    )


def _looks_like_html(body: str) -> bool:
    return re.search(r"<(?:!doctype|html|body|p|div|a|br|table)\b", body, re.IGNORECASE) is not None


# ---------------------------------------------------------------- plain text from HTML


class _TextExtractor(HTMLParser):
    BLOCKS = frozenset(
        {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "table", "ul", "ol", "hr", "section"}
    )
    HIDDEN = frozenset({"head", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._line: list[str] = []
        self._hidden = 0
        self._links: list[tuple[str, int]] = []  # (href, where its text starts in the current line)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self._break()
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self._line)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self._break()
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = " ".join("".join(self._line[start:]).split())
            if href and href != label and not href.startswith("#"):
                self._line.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._line.append(data)

    def _break(self) -> None:
        line = " ".join("".join(self._line).split())
        self._line = []
        if line:
            self.blocks.append(line)

    def close(self) -> None:
        super().close()
        self._break()


def html_to_text(markup: str) -> str:
    """A plain-text reading of an HTML email: one paragraph per block, links as ``label <url>``."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return "\n\n".join(extractor.blocks) + ("\n" if extractor.blocks else "")


# ---------------------------------------------------------------- pages

# An email as sent: its inline style attributes apply; images, fonts, scripts and frames load from nowhere.
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def _mailbox_page(emails: list[SentEmail]) -> LocalResponse:
    count = f"{len(emails)} email{'' if len(emails) == 1 else 's'}, newest first" if emails else "No emails sent yet"
    parts = [
        "<h1>Local mailbox</h1>",
        f'<p class="meta">{count}. Sent through SES into moto; nothing leaves this machine. '
        f'Reload to see new ones; <a href="{JSON_PATH}">JSON</a>.</p>',
    ]
    if emails:
        parts.append(
            '<table><thead><tr><th scope="col">No.</th><th scope="col">Sent (service clock)</th>'
            '<th scope="col">To</th><th scope="col">Subject</th></tr></thead><tbody>'
        )
        for sent in emails:
            subject = html.escape(sent.subject or "(no subject)")
            parts.append(
                f'<tr id="email-{sent.number}"><td>#{sent.number}</td>'
                f'<td class="when">{html.escape(_short_time(sent.sent_at))}</td>'
                f'<td class="to">{html.escape(", ".join(sent.to))}</td>'
                f'<td class="subject"><a href="{MAILBOX_PATH}/{sent.number}">{subject}</a>'
                f"<details><summary>Plain text</summary><pre>{html.escape(sent.text)}</pre></details></td></tr>"
            )
        parts.append("</tbody></table>")
    return page(200, "Local mailbox", "\n".join(parts))


def _short_time(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else ""


def _not_found() -> LocalResponse:
    return page(
        404, "No such email", f'<h1>No such email</h1>\n<p><a href="{MAILBOX_PATH}">Back to the mailbox</a></p>'
    )


def _mailbox(stack: ApiStack) -> Mailbox:
    return attach(stack)


@local_route("GET", MAILBOX_PATH)
def mailbox_page(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The sent emails as a page, newest first (GET /_local/mailbox/<n> shows one as sent)."""
    return _mailbox_page(_mailbox(stack).emails())


@local_route("GET", MESSAGE_PATH)
def mailbox_message(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """One sent email, its HTML body as sent (n from the mailbox; 1 is the first sent)."""
    found = _MESSAGE_NUMBER.fullmatch(request.path)
    sent = _mailbox(stack).email(int(found.group("n"))) if found else None
    if sent is None:
        return _not_found()
    if sent.html is not None:
        return html_response(200, sent.html, EMAIL_POLICY)
    return page(200, sent.subject or "(no subject)", f"<pre>{html.escape(sent.text)}</pre>")


@local_route("GET", JSON_PATH)
def mailbox_json(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The sent emails as {items: [{id, to, subject, text, html, sent_at, ...}]}, newest first."""
    items = [sent.as_json() for sent in _mailbox(stack).emails()]
    return LocalResponse.json(200, {"items": items}, [("Cache-Control", "no-store")])
