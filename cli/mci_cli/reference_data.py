"""``mci reference-data load``: engagements, locations, customers and domains from JSON or CSV files.

Three steps, so that a bad file changes nothing: every file is read (encoding, columns, JSON syntax),
then every record is validated by the API itself (``POST /ops/reference-data?dry_run=true``, in
batches), and only when no record was refused are the batches loaded for real. Records are upserted
by id, so running the same load again changes nothing. Every request carries an ``Idempotency-Key``
made from the whole request (dry_run flag and body): a batch sent again after a lost answer, or by a
rerun of the same files within the API's idempotency window, is answered with the first answer and
not loaded a second time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from mci_cli.api import ApiClient, ApiError, idempotency_key
from mci_cli.input_files import CsvTable, check_columns, read_csv, read_json_sections, read_text
from mci_cli.progress import Progress
from mci_cli.report import InputRejected, Issue

PATH = "/ops/reference-data"
KEY_PREFIX = "mci-cli-load-"
DEFAULT_BATCH_RECORDS = 200
# The API refuses bodies over 64 KiB (413); batches stay well under it.
DEFAULT_BATCH_BYTES = 48 * 1024

CellType = Literal["text", "int", "bool", "decimal", "list"]


@dataclass(frozen=True)
class Column:
    name: str
    type: CellType = "text"
    required: bool = False


@dataclass(frozen=True)
class Kind:
    """One kind of record: its member of the API body and its CSV columns (dotted names nest)."""

    name: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def identity(self, record: dict[str, Any]) -> str | None:
        """What the API upserts the record by, roughly normalised, to spot a record given twice."""
        first = self.columns[0].name
        if self.name == "customers":
            kind, value = record.get("identifier_type"), record.get("value")
            return f"{kind}:{str(value).strip().lower()}" if isinstance(kind, str) and value is not None else None
        value = record.get(first)
        return str(value).strip().lower().rstrip(".") if isinstance(value, str | int) else None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "engagements",
            (
                Column("engagement_id", required=True),
                Column("name", required=True),
                Column("payment_type", required=True),
                Column("identifier_types", "list", required=True),
                Column("consent_window_days", "int"),
                Column("submission_window_days", "int"),
                Column("max_active_claims_per_customer", "int"),
                Column("criteria.segments", "list"),
                Column("criteria.countries", "list"),
                Column("criteria.min_opportunity_value_usd", "decimal"),
                Column("opens_on", required=True),
                Column("closes_on", required=True),
                Column("referral.enabled", "bool"),
                Column("referral.min_deal_size_usd", "decimal"),
                Column("payment_rules.hourly_rate_usd", "decimal"),
                Column("payment_rules.min_hours", "int"),
                Column("payment_rules.max_hours", "int"),
                Column("payment_rules.max_payment_usd", "decimal"),
                Column("payment_rules.max_opportunity_share", "decimal"),
            ),
        ),
        Kind(
            "locations",
            (
                Column("location_id", required=True),
                Column("partner_id", required=True),
                Column("name", required=True),
                Column("enrolled_in_mci", "bool", required=True),
                Column("eligible_engagements", "list"),
            ),
        ),
        Kind(
            "customers",
            (
                Column("identifier_type", required=True),
                Column("value", required=True),
                Column("name", required=True),
                Column("segment", required=True),
                Column("country", required=True),
                Column("cosell_allowed", "bool"),
                Column("opportunity_value_usd", "decimal"),
            ),
        ),
        Kind("domains", (Column("domain", required=True), Column("tenant_id", required=True))),
    )
}
# The column that tells which kind a CSV file holds.
KEY_COLUMNS = {
    "engagement_id": "engagements",
    "location_id": "locations",
    "identifier_type": "customers",
    "domain": "domains",
}
TRUE = frozenset({"true", "yes", "y", "1"})
FALSE = frozenset({"false", "no", "n", "0"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_POSITION = re.compile(r"^(?P<kind>[a-z]+)\[(?P<index>[0-9]+)\]\.?(?P<rest>.*)$")


@dataclass(frozen=True)
class Record:
    kind: Kind
    path: str
    line: int
    body: Any
    from_csv: bool

    def issue(self, api_field: str, message: str) -> Issue:
        """An error the API reported on a field of this record, named as the file names it."""
        return Issue(self.path, self.line, self._field(api_field), message)

    def _field(self, api_field: str) -> str:
        if not self.from_csv or not api_field:
            return api_field
        column = re.sub(r"\[[0-9]+\]", "", api_field)
        if column in self.kind.column_names:
            return column
        return api_field


@dataclass
class LoadResult:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    batches: int = 0
    files: int = 0


# ---------------------------------------------------------------- reading


def read_records(paths: Sequence[str]) -> tuple[list[Record], list[Issue]]:
    """The records of every file that reads as records, in load order (engagements, locations,
    customers, domains), and the problems of the files that do not."""
    records: list[Record] = []
    issues: list[Issue] = []
    for path in paths:
        try:
            found, problems = _records_of(path)
        except InputRejected as rejected:
            issues.extend(rejected.issues)
        else:
            records.extend(found)
            issues.extend(problems)
    issues.extend(_repeated(records))
    order = list(KINDS)
    return sorted(records, key=lambda r: order.index(r.kind.name)), issues  # stable: file and line order kept


def _records_of(path: str) -> tuple[list[Record], list[Issue]]:
    text = read_text(path)
    if _looks_like_json(path, text):
        return _json_records(path, text), []
    table = read_csv(path, text)
    return _csv_records(table), table.issues


def _looks_like_json(path: str, text: str) -> bool:
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".csv"):
        return suffix == ".json"
    return text.lstrip().startswith("{")


def _json_records(path: str, text: str) -> list[Record]:
    records: list[Record] = []
    issues: list[Issue] = []
    for name, section in read_json_sections(path, text).items():
        kind = KINDS.get(name)
        if kind is None:
            message = f"is not a kind of reference data; the kinds are {', '.join(KINDS)}"
            issues.append(Issue(path, section.line, name, message))
            continue
        if section.items is None:
            issues.append(Issue(path, section.line, name, "must be a list of records"))
            continue
        for item in section.items:
            if not isinstance(item.value, dict):
                issues.append(Issue(path, item.line, "", f"each of {name} must be a JSON object"))
            else:
                records.append(Record(kind, path, item.line, item.value, from_csv=False))
    if issues:
        raise InputRejected(issues)
    if not records:
        raise InputRejected([Issue(path, 1, "", "holds no records")])
    return records


def _csv_records(table: CsvTable) -> list[Record]:
    kinds = {KEY_COLUMNS[name] for name in table.header if name in KEY_COLUMNS}
    if len(kinds) != 1:
        expected = "; ".join(f"{k.name}: {', '.join(k.column_names)}" for k in KINDS.values())
        message = "the header does not say which records the file holds. The columns of each kind are " + expected
        raise InputRejected([Issue(table.path, table.header_line, "", message)])
    kind = KINDS[kinds.pop()]
    issues = check_columns(table, kind.column_names, kind.required)
    if issues:
        raise InputRejected(issues)
    types = {c.name: c.type for c in kind.columns}
    return [
        Record(kind, table.path, row.line, _nested({n: _cell(v, types[n]) for n, v in row.cells.items()}), True)
        for row in table.rows
    ]


def _cell(text: str, cell_type: CellType) -> Any:
    """A cell as JSON. What does not convert is sent as the text it is, and the API names it."""
    value = text.strip()
    if not value:
        return None
    if cell_type == "list":
        return [item.strip() for item in value.split(";") if item.strip()]
    if cell_type == "int" and _INTEGER.fullmatch(value):
        return int(value)
    if cell_type == "bool" and value.lower() in TRUE | FALSE:
        return value.lower() in TRUE
    if cell_type == "decimal" and _DECIMAL.fullmatch(value):
        # The API takes amounts as JSON numbers only (rule 27). Whole amounts go as integers; the others
        # as floats, whose shortest form is the cell's digits for any amount the API accepts (at most 12
        # significant digits), and the API reads a number through that shortest form, so it stays exact.
        amount = Decimal(value)
        return int(amount) if amount == amount.to_integral_value() else float(amount)
    return value


def _nested(cells: dict[str, Any]) -> dict[str, Any]:
    """Dotted columns as nested objects; an empty cell is left out, and so is a group of empty cells."""
    record: dict[str, Any] = {}
    for name, value in cells.items():
        if value is None:
            continue
        target = record
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return record


def _repeated(records: list[Record]) -> list[Issue]:
    first: dict[tuple[str, str], Record] = {}
    issues = []
    for record in records:
        identity = record.kind.identity(record.body)
        if identity is None:
            continue
        earlier = first.setdefault((record.kind.name, identity), record)
        if earlier is not record:
            where = f"{earlier.path}:{earlier.line}"
            issues.append(Issue(record.path, record.line, "", f"repeats the {record.kind.name} record of {where}"))
    return issues


# ---------------------------------------------------------------- batches


@dataclass(frozen=True)
class Batch:
    records: list[Record]

    def body(self) -> dict[str, list[Any]]:
        body: dict[str, list[Any]] = {}
        for record in self.records:
            body.setdefault(record.kind.name, []).append(record.body)
        return body

    def record_at(self, kind: str, index: int) -> Record | None:
        same = [r for r in self.records if r.kind.name == kind]
        return same[index] if 0 <= index < len(same) else None

    def halves(self) -> list[Batch]:
        middle = len(self.records) // 2
        return [Batch(self.records[:middle]), Batch(self.records[middle:])]


def batches(records: list[Record], max_records: int, max_bytes: int) -> Iterator[Batch]:
    current: list[Record] = []
    size = 0
    for record in records:
        record_size = len(json.dumps(record.body, ensure_ascii=False).encode("utf-8")) + 2
        if current and (len(current) >= max_records or size + record_size > max_bytes):
            yield Batch(current)
            current, size = [], 0
        current.append(record)
        size += record_size
    if current:
        yield Batch(current)


def _send(api: ApiClient, batch: Batch, *, dry_run: bool) -> tuple[list[Issue], dict[str, int]]:
    """One batch: the issues the API found in it, or the counts it loaded. A batch too large for the
    API (413) is split in two and sent again. Each request carries an Idempotency-Key made from all the
    API compares for it, the dry_run flag and the body (a dry run is another request than the load of
    the same batch), so a batch sent again after a lost answer is answered, not loaded a second time."""
    body = batch.body()
    key = idempotency_key(KEY_PREFIX, {"dry_run": dry_run, **body})
    query = {"dry_run": "true"} if dry_run else None
    answer = api.post(PATH, body, query=query, headers={"Idempotency-Key": key})
    if answer.status == 413 and len(batch.records) > 1:
        issues: list[Issue] = []
        counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        for half in batch.halves():
            found, loaded = _send(api, half, dry_run=dry_run)
            issues.extend(found)
            for name, count in loaded.items():
                counts[name] += count
        return issues, counts
    if answer.status == 413:
        record = batch.records[0]
        return [Issue(record.path, record.line, "", "the record is larger than the API accepts")], {}
    if answer.status == 422 and answer.code == "validation_error":
        return _issues(batch, answer.field_errors), {}
    if not answer.ok:
        raise answer.failure()
    return [], {name: int(answer.body.get(name, 0)) for name in KINDS}


def _issues(batch: Batch, errors: list[dict[str, str]]) -> list[Issue]:
    issues = []
    for error in errors:
        api_field = str(error.get("field", ""))
        message = _readable(str(error.get("message", "is invalid")))
        found = _POSITION.match(api_field)
        record = batch.record_at(found["kind"], int(found["index"])) if found else None
        if record is None:
            first = batch.records[0]
            issues.append(Issue(first.path, None, api_field, f"{message} (in the batch from line {first.line})"))
        else:
            issues.append(record.issue(found["rest"] if found else "", message))
    return issues


def _readable(message: str) -> str:
    """pydantic's 'Value error, is not a valid tenant_id' reads better without its prefix."""
    return message.removeprefix("Value error, ")


# ---------------------------------------------------------------- the command


def load(
    api: ApiClient,
    paths: Sequence[str],
    *,
    dry_run: bool = False,
    max_records: int = DEFAULT_BATCH_RECORDS,
    max_bytes: int = DEFAULT_BATCH_BYTES,
) -> LoadResult:
    """Validate every record of ``paths`` with the API, then (unless ``dry_run``) load them in batches."""
    records, issues = read_records(paths)
    planned = list(batches(records, max_records, max_bytes))
    with Progress("validating", len(records)) as progress:
        for batch in planned:
            found, _ = _send(api, batch, dry_run=True)
            issues.extend(found)
            progress.advance(len(batch.records))
    if issues:
        raise InputRejected(issues)
    result = LoadResult(batches=len(planned), files=len(set(paths)))
    if dry_run:
        for record in records:
            result.counts[record.kind.name] += 1
        return result
    with Progress("loading", len(records)) as progress:
        for batch in planned:
            found, counts = _send(api, batch, dry_run=False)
            if found:  # validated a moment ago: only a change of the API's rules in between gets here
                first = found[0]
                raise ApiError(f"the API refused a record its dry run accepted ({first}); rerun the load")
            for name, count in counts.items():
                result.counts[name] += count
            progress.advance(len(batch.records))
    return result
