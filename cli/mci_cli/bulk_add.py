"""``mci customers add-bulk``: one CSV row per customer and engagement, each previewed, then added.

1. The file is read (encoding, columns, required cells, a customer and engagement given twice).
2. Every distinct customer is previewed (``POST /eligibility-checks``): the API validates the location
   and the identifier, and says which engagements exist. Any problem stops here: nothing was added.
3. Row by row, in file order: a fresh preview, then, when the engagement is eligible, the add
   (``POST /customers``) with an ``Idempotency-Key`` made from the row's request body. A row already
   added by an earlier, interrupted run is previewed as ``duplicate_claim``; the add is sent anyway and
   the API replays the first answer (same claim id), so a rerun adds nothing twice and writes the
   same results as a run that was never interrupted.

Ineligible and refused rows are results like any other: partial success is normal.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mci_cli.api import Answer, ApiClient, idempotency_key
from mci_cli.input_files import check_columns, read_csv, read_text
from mci_cli.progress import Progress
from mci_cli.report import InputRejected, Issue

COLUMNS = (
    "friendly_name",
    "location_id",
    "identifier_type",
    "identifier_value",
    "engagement_id",
    "hours",
    "tenant_mismatch_reason",
    "customer_name",
    "customer_email",
    "customer_phone",
    "customer_language",
    "partner_name",
    "partner_email",
    "partner_phone",
)
REQUIRED = (
    "friendly_name",
    "location_id",
    "identifier_type",
    "identifier_value",
    "engagement_id",
    "customer_name",
    "customer_email",
    "partner_name",
    "partner_email",
)
RESULT_COLUMNS = (
    "line",
    "friendly_name",
    "location_id",
    "identifier_type",
    "identifier_value",
    "engagement_id",
    "result",
    "claim_id",
    "state",
    "reason_codes",
    "reasons",
)
ADDED, INELIGIBLE, REFUSED = "added", "ineligible", "refused"
DUPLICATE_CLAIM = "duplicate_claim"
KEY_PREFIX = "mci-cli-add-"
# Identifier types the API compares in lower case (SPEC §2): sent that way, so the key does not change
# with the case a spreadsheet happened to use.
_LOWER_CASE_TYPES = frozenset({"domain", "tenant_id", "subscription_id"})
# API field -> the column that holds it
_API_FIELDS = {
    "friendly_name": "friendly_name",
    "location_id": "location_id",
    "identifier.type": "identifier_type",
    "identifier.value": "identifier_value",
    "identifier": "identifier_value",
    "engagement_ids": "engagement_id",
    "hours": "hours",
    "tenant_mismatch_reason": "tenant_mismatch_reason",
    "customer_email": "customer_email",
    "customer_contact.name": "customer_name",
    "customer_contact.email": "customer_email",
    "customer_contact.phone": "customer_phone",
    "customer_contact.language": "customer_language",
    "partner_contact.name": "partner_name",
    "partner_contact.email": "partner_email",
    "partner_contact.phone": "partner_phone",
}


@dataclass(frozen=True)
class BulkRow:
    path: str
    line: int
    cells: dict[str, str]

    def cell(self, name: str) -> str:
        return self.cells.get(name, "").strip()

    @property
    def identifier(self) -> dict[str, str]:
        kind, value = self.cell("identifier_type"), self.cell("identifier_value")
        return {"type": kind, "value": value.lower() if kind in _LOWER_CASE_TYPES else value}

    @property
    def preview_request(self) -> dict[str, Any]:
        return {
            "location_id": self.cell("location_id"),
            "identifier": self.identifier,
            "customer_email": self.cell("customer_email"),
        }

    @property
    def add_request(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "friendly_name": self.cell("friendly_name"),
            "location_id": self.cell("location_id"),
            "identifier": self.identifier,
            "engagement_ids": [self.cell("engagement_id")],
            "customer_contact": _present(
                name=self.cell("customer_name"),
                email=self.cell("customer_email"),
                phone=self.cell("customer_phone"),
                language=self.cell("customer_language").lower(),
            ),
            "partner_contact": _present(
                name=self.cell("partner_name"), email=self.cell("partner_email"), phone=self.cell("partner_phone")
            ),
        }
        if self.cell("hours"):
            body["hours"] = int(self.cell("hours"))
        if self.cell("tenant_mismatch_reason"):
            body["tenant_mismatch_reason"] = self.cell("tenant_mismatch_reason")
        return body

    @property
    def idempotency_key(self) -> str:
        """The same request body, the same key: whoever runs the file, however often."""
        return idempotency_key(KEY_PREFIX, self.add_request)

    def issue(self, api_field: str, message: str) -> Issue:
        column = _API_FIELDS.get(re.sub(r"\[[0-9]+\]", "", api_field), api_field)
        return Issue(self.path, self.line, column, message.removeprefix("Value error, "))


@dataclass(frozen=True)
class RowResult:
    row: BulkRow
    result: str
    claim_id: str = ""
    state: str = ""
    reasons: tuple[tuple[str, str], ...] = ()

    def as_csv(self) -> dict[str, str]:
        return {
            "line": str(self.row.line),
            "friendly_name": self.row.cell("friendly_name"),
            "location_id": self.row.cell("location_id"),
            "identifier_type": self.row.cell("identifier_type"),
            "identifier_value": self.row.cell("identifier_value"),
            "engagement_id": self.row.cell("engagement_id"),
            "result": self.result,
            "claim_id": self.claim_id,
            "state": self.state,
            "reason_codes": ";".join(code for code, _ in self.reasons),
            "reasons": " | ".join(message for _, message in self.reasons),
        }


@dataclass
class BulkSummary:
    rows: int = 0
    added: int = 0
    ineligible: int = 0
    refused: int = 0

    def count(self, result: RowResult) -> None:
        self.rows += 1
        if result.result == ADDED:
            self.added += 1
        elif result.result == INELIGIBLE:
            self.ineligible += 1
        else:
            self.refused += 1


def _present(**values: str) -> dict[str, str]:
    return {name: value for name, value in values.items() if value}


# ---------------------------------------------------------------- 1. the file


def read_rows(path: str) -> tuple[list[BulkRow], list[Issue]]:
    """The rows whose cells are complete, and the problems of the others. Refused outright when the
    file cannot be read as the CSV it should be (encoding, columns, empty)."""
    table = read_csv(path, read_text(path))
    issues = check_columns(table, COLUMNS, REQUIRED)
    if issues:
        raise InputRejected(issues)
    issues.extend(table.issues)
    rows = []
    for row in (BulkRow(path, row.line, row.cells) for row in table.rows):
        found = list(_row_issues(row))
        issues.extend(found)
        if not found:
            rows.append(row)
    issues.extend(_repeated(rows))
    return rows, issues


def _row_issues(row: BulkRow) -> Iterator[Issue]:
    for name in REQUIRED:
        if not row.cell(name):
            yield Issue(row.path, row.line, name, "is required")
    hours = row.cell("hours")
    if hours and not re.fullmatch(r"[0-9]+", hours):
        yield Issue(row.path, row.line, "hours", "must be a whole number of hours")


def _repeated(rows: list[BulkRow]) -> list[Issue]:
    first: dict[tuple[str, ...], BulkRow] = {}
    issues = []
    for row in rows:
        key = (
            row.cell("location_id"),
            row.cell("identifier_type"),
            row.cell("identifier_value").lower(),
            row.cell("engagement_id"),
        )
        earlier = first.setdefault(key, row)
        if earlier is not row:
            message = f"repeats the customer, location and engagement of line {earlier.line}; one row each"
            issues.append(Issue(row.path, row.line, "", message))
    return issues


# ---------------------------------------------------------------- 2. every customer previewed


def _preview_key(row: BulkRow) -> str:
    return json.dumps(row.preview_request, sort_keys=True)


def validate(api: ApiClient, rows: list[BulkRow]) -> list[Issue]:
    """What the API finds wrong with the rows' locations, identifiers and engagements (adding nothing)."""
    by_customer: dict[str, list[BulkRow]] = {}
    for row in rows:
        by_customer.setdefault(_preview_key(row), []).append(row)
    issues: list[Issue] = []
    with Progress("checking", len(by_customer)) as progress:
        for same in by_customer.values():
            answer = api.post("/eligibility-checks", same[0].preview_request)
            progress.advance()
            if answer.status == 422 and answer.field_errors:
                issues.extend(
                    row.issue(e.get("field", ""), e.get("message", "is invalid"))
                    for row in same
                    for e in answer.field_errors
                )
                continue
            if not answer.ok:
                raise answer.failure()
            known = {e["engagement_id"] for e in [*answer.body["eligible"], *answer.body["ineligible"]]}
            for row in same:
                if row.cell("engagement_id") not in known:
                    issues.append(Issue(row.path, row.line, "engagement_id", "is not an engagement the API knows"))
                if answer.body.get("tenant_mismatch_reason_required") and not row.cell("tenant_mismatch_reason"):
                    issues.append(
                        Issue(
                            row.path,
                            row.line,
                            "tenant_mismatch_reason",
                            "is required: the tenant id is not the tenant of the customer contact's email domain",
                        )
                    )
    return issues


# ---------------------------------------------------------------- 3. row by row


def add_row(api: ApiClient, row: BulkRow) -> RowResult:
    """Preview the row's customer now, then add it to the row's engagement when it may be."""
    preview = api.post("/eligibility-checks", row.preview_request)
    if not preview.ok:
        raise preview.failure()
    engagement_id = row.cell("engagement_id")
    reasons = next(
        (_reasons(item["reasons"]) for item in preview.body["ineligible"] if item["engagement_id"] == engagement_id),
        (),
    )
    if reasons and DUPLICATE_CLAIM not in {code for code, _ in reasons}:
        return RowResult(row, INELIGIBLE, reasons=reasons)
    answer = api.post("/customers", row.add_request, headers={"Idempotency-Key": row.idempotency_key})
    if answer.status == 201:
        (claim,) = [c for c in answer.body["claims"] if c["engagement_id"] == engagement_id]
        return RowResult(row, ADDED, claim_id=str(claim["claim_id"]), state=str(claim["state"]))
    return _refusal(row, answer)


def _refusal(row: BulkRow, answer: Answer) -> RowResult:
    if answer.status not in (409, 422) or not isinstance(answer.body, dict):
        raise answer.failure()
    details = answer.body.get("engagements")
    if isinstance(details, list):  # eligibility refused it: the reasons, as the preview gives them
        reasons = tuple(reason for item in details for reason in _reasons(item.get("reasons", [])))
        return RowResult(row, INELIGIBLE, reasons=reasons)
    if answer.field_errors:
        issues = [row.issue(e.get("field", ""), e.get("message", "is invalid")) for e in answer.field_errors]
        return RowResult(row, REFUSED, reasons=tuple((answer.code, f"{i.field}: {i.message}") for i in issues))
    return RowResult(row, REFUSED, reasons=((answer.code, str(answer.body.get("detail", ""))),))


def _reasons(items: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(item.get("code", "")), str(item.get("message", ""))) for item in items)


def default_results_path(path: str) -> str:
    source = Path(path)
    return str(source.with_name(f"{source.stem}.results.csv"))


def add_bulk(api: ApiClient, path: str, results_path: str, *, out: TextIO | None = None) -> BulkSummary:
    """The whole command: read, validate, then add row by row, writing each result as it is known."""
    rows, issues = read_rows(path)
    issues.extend(validate(api, rows))
    if issues:
        raise InputRejected(issues)
    summary = BulkSummary()
    with Path(results_path).open("w", encoding="utf-8", newline="") as stream, Progress("adding", len(rows)) as bar:
        writer = csv.DictWriter(stream, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        for row in rows:
            result = add_row(api, row)
            writer.writerow(result.as_csv())
            stream.flush()  # an interrupted run leaves every result it got
            summary.count(result)
            bar.advance()
    return summary
