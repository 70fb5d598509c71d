"""The files of the partner web app (``web/``): which are the app's, their content types, and its CSP.

One rule for both places the app is served from: the local stack (``local/webapp.py``, under ``/app/``)
and its bucket on AWS (``local/publish_web.py``, behind CloudFront, whose response-headers policy in
template.yaml sends this CSP with the API's and the issuer's origins added to ``connect-src``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import unquote

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# npm's files stay in the tree (web/package.json pins the OIDC client, `make web-vendor` copies it into
# web/vendor/) but are never served: the app loads only the vendored copies.
NOT_SERVED = frozenset({"node_modules", "package.json", "package-lock.json"})


def web_file(relative: str, root: Path = WEB_ROOT) -> Path | None:
    """The file of ``web/`` a request path names, or None (unknown type, hidden, npm's, or outside ``web/``)."""
    parts = PurePosixPath(unquote(relative)).parts
    if not parts or any(part in ("", ".", "..") or part.startswith(".") or "\\" in part for part in parts):
        return None
    if NOT_SERVED.intersection(part.lower() for part in parts):
        return None
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root.resolve()) or path.suffix not in CONTENT_TYPES or not path.is_file():
        return None
    return path
