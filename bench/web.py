"""The web app's weight (issue 14): what a partner's browser loads until the first useful screen.

The first useful screen is the engagements list after sign-in. Headless Chromium, with an empty cache,
opens /app/ on the local stack, signs in and waits for the list; every response it received is counted,
its body gzip-compressed here (the local server does not compress; CloudFront would), everything included:
HTML, CSS, modules, config, catalogue, token and API answers. Then the API calls each Customers-page tab
makes. Needs Chromium and playwright, so it is not part of ``--smoke`` (run it with ``--only web``).
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

BUDGET_BYTES = 150 * 1024
TABS = ("Eligible", "Ineligible", "Complete")


class Recorder:
    """The responses a page received: path, raw and gzip-compressed body sizes."""

    def __init__(self, page: Any) -> None:
        self.rows: list[dict[str, Any]] = []
        page.on("response", self._record)

    def _record(self, response: Any) -> None:
        try:
            body = response.body()
        except Exception:  # a redirect or an aborted request has no body
            body = b""
        encoded = response.headers.get("content-encoding") in ("gzip", "br")
        self.rows.append(
            {
                "path": urlsplit(response.url).path,
                "method": response.request.method,
                "bytes": len(body),
                "gzip_bytes": len(body) if encoded else len(gzip.compress(body, compresslevel=9)),
            }
        )

    def take(self) -> list[dict[str, Any]]:
        taken, self.rows = self.rows, []
        return taken


def _api(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{row['method']} {row['path']}" for row in rows if not row["path"].startswith(("/app/", "/_local/"))]


def measure(progress: Callable[[str], None] = print) -> dict[str, Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium not found (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    from local.stack import LocalStack
    from tests.browser.conftest import LAUNCH_ARGS
    from tests.browser.test_web_app import Setup, sign_in
    from tests.e2e.conftest import StackClient
    from tests.support.screenshots import DESKTOP, ENGAGEMENT, demo_state

    with LocalStack(port=0) as stack, sync_playwright() as driver:
        demo_state(Setup(stack, StackClient(stack.url)))
        progress("  web: demo state ready; Chromium with an empty cache")
        browser = driver.chromium.launch(executable_path=chromium, headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(**DESKTOP)
            page = context.new_page()
            recorder = Recorder(page)
            sign_in(page, stack)
            expect(page.get_by_role("link", name=ENGAGEMENT)).to_be_visible()
            page.wait_for_load_state("networkidle")
            first = recorder.take()
            tabs: dict[str, list[str]] = {}
            page.get_by_role("link", name=ENGAGEMENT).click()
            for tab in TABS:
                if tab != TABS[0]:
                    page.get_by_role("tab", name=tab, exact=True).click()
                page.get_by_role("tabpanel").get_by_role("row").first.wait_for()
                page.wait_for_load_state("networkidle")
                tabs[tab.lower()] = _api(recorder.take())
            context.close()
        finally:
            browser.close()
    gzip_bytes = sum(row["gzip_bytes"] for row in first)
    largest = sorted(first, key=lambda row: row["gzip_bytes"], reverse=True)[:5]
    return {
        "target": f"first useful screen (engagements after sign-in) <= {BUDGET_BYTES // 1024} KB gzip",
        "met": gzip_bytes <= BUDGET_BYTES,
        "first_screen": {
            "requests": len(first),
            "bytes": sum(row["bytes"] for row in first),
            "gzip_bytes": gzip_bytes,
            "api_calls": _api(first),
            "largest": largest,
        },
        "tabs": {name: {"api_calls": len(calls), "calls": calls} for name, calls in tabs.items()},
    }


def render(section: dict[str, Any]) -> list[str]:
    first = section["first_screen"]
    lines = [
        f"   first screen: {first['requests']} requests, {first['gzip_bytes'] / 1024:,.1f} KB gzip "
        f"({first['bytes'] / 1024:,.1f} KB raw), API calls: {', '.join(first['api_calls'])}",
        "   largest: " + ", ".join(f"{row['path']} {row['gzip_bytes'] / 1024:.1f} KB" for row in first["largest"]),
    ]
    for name, tab in section["tabs"].items():
        lines.append(f"   tab {name:11} {tab['api_calls']} API call(s): {', '.join(tab['calls'])}")
    return lines
