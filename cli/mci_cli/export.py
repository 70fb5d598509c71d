"""``mci customers export``: one tab of an engagement's Customers page as CSV, every page of it."""

from __future__ import annotations

import csv
import urllib.parse
from collections.abc import Iterator
from typing import Any, TextIO

from mci_cli.api import ApiClient, ApiError
from mci_cli.progress import Progress

TABS = ("eligible", "ineligible", "complete")
MAX_PAGE = 100
COLUMNS = (
    "kind",
    "claim_id",
    "customer_id",
    "friendly_name",
    "identifier_type",
    "identifier_value",
    "state",
    "deadline",
    "days_left",
    "actions",
    "reason_codes",
    "reasons",
)


def pages(api: ApiClient, engagement_id: str, tab: str, page_size: int) -> Iterator[dict[str, Any]]:
    """Every page of the tab, following ``next_cursor`` until there is none."""
    path = f"/engagements/{urllib.parse.quote(engagement_id, safe='')}/customers"
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        query: dict[str, str | int] = {"tab": tab, "limit": page_size}
        if cursor:
            query["cursor"] = cursor
        answer = api.get(path, query)
        if answer.status == 404:
            raise ApiError(f"no engagement {engagement_id!r} (404): check the id with GET /engagements")
        if not answer.ok:
            raise answer.failure()
        yield answer.body
        cursor = answer.body.get("next_cursor")
        if not cursor:
            return
        if cursor in seen:
            raise ApiError(f"the API returned the same cursor twice on {path}; stopping")
        seen.add(cursor)


def row(item: dict[str, Any]) -> dict[str, str]:
    customer = item.get("customer") or {}
    reasons = item.get("reasons") or []
    return {
        "kind": str(item.get("kind", "")),
        "claim_id": str(item.get("claim_id") or ""),
        "customer_id": str(item.get("customer_id") or ""),
        "friendly_name": str(item.get("friendly_name", "")),
        "identifier_type": str(customer.get("type", "")),
        "identifier_value": str(customer.get("value", "")),
        "state": str(item.get("state") or ""),
        "deadline": str(item.get("deadline") or ""),
        "days_left": "" if item.get("days_left") is None else str(item["days_left"]),
        "actions": ";".join(item.get("actions") or []),
        "reason_codes": ";".join(str(r.get("code", "")) for r in reasons),
        "reasons": " | ".join(str(r.get("message", "")) for r in reasons),
    }


def export(
    api: ApiClient, engagement_id: str, tab: str, out: TextIO, *, page_size: int = MAX_PAGE, notes: TextIO
) -> int:
    """Write the tab to ``out`` as CSV; the page's note (if any) to ``notes``. The number of rows."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    count = 0
    printed_notes: set[str] = set()
    with Progress(f"exporting {tab}") as progress:
        for number, page in enumerate(pages(api, engagement_id, tab, page_size)):
            if number == 0:  # only once the API has answered: an error leaves stdout empty
                writer.writeheader()
            note = page.get("note")
            if note and note not in printed_notes:
                printed_notes.add(note)
                print(f"note: {note}", file=notes)
            for item in page.get("items") or []:
                writer.writerow(row(item))
                count += 1
            progress.advance(len(page.get("items") or []))
    return count
