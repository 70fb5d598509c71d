"""The chrome of the local stack's own pages (mailbox, events feed) and the security headers of every page it
serves (those, the web app, Swagger UI): one stylesheet, one layout, one set of headers."""

from __future__ import annotations

import base64
import hashlib
import html

from local.server import LocalResponse

STYLE = """
:root { color-scheme: light; }
body { margin: 0; font: 15px/1.45 system-ui, "Segoe UI", Arial, sans-serif; color: #1b1b1b; background: #f5f5f5; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; background: #fff; min-height: 100vh; box-sizing: border-box; }
h1 { font-size: 1.35rem; margin: 0 0 .25rem; }
p.meta { color: #3b3a39; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 1.25rem 0 .25rem; }
th, td { text-align: left; vertical-align: top; padding: .5rem; border-bottom: 1px solid #d2d0ce; }
th { font-size: .85rem; color: #3b3a39; }
td.when { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.to, td.subject { overflow-wrap: anywhere; }
td.code { font-family: ui-monospace, Consolas, monospace; font-size: .85rem; }
a { color: #0b5cad; }
a:focus-visible, summary:focus-visible { outline: 3px solid #1b1b1b; outline-offset: 2px; }
details { margin-top: .25rem; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f5f5f5; padding: .5rem; margin: .25rem 0 0; }
@media (max-width: 40rem) {
  thead { display: none; }
  tr, td { display: block; }
  tr { border-bottom: 1px solid #d2d0ce; padding: .25rem 0; }
  td { border: 0; padding: .15rem 0; }
}
""".strip()
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
# A page of ours: nothing but its own stylesheet; no scripts, fonts or images, nothing from elsewhere.
PAGE_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HTML = "text/html; charset=utf-8"


def security_headers(content_security_policy: str) -> list[tuple[str, str]]:
    """The headers every page of the local stack carries: its policy, no sniffing, no referrer, no framing."""
    return [
        ("Content-Security-Policy", content_security_policy),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
    ]


def layout(title: str, body: str) -> str:
    """A whole page: ``body`` (HTML) in the shared layout and stylesheet, ``title`` escaped."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def page(status: int, title: str, body: str) -> LocalResponse:
    """A page of ours, never cached."""
    return html_response(status, layout(title, body), PAGE_POLICY)


def html_response(status: int, markup: str, content_security_policy: str) -> LocalResponse:
    """HTML as it is (an email as sent, under its own policy), never cached."""
    headers = [("Content-Type", HTML), ("Cache-Control", "no-store"), *security_headers(content_security_policy)]
    return LocalResponse(status, headers, markup.encode())
