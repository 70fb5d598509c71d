"""The operations CLI reading its input files: lines, encodings, columns, JSON positions, CSV cells as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mci_cli import bulk_add, reference_data
from mci_cli.api import Answer
from mci_cli.input_files import read_csv, read_json_sections, read_text
from mci_cli.report import InputRejected, Issue


def rejected(call: Any, *args: Any) -> list[str]:
    with pytest.raises(InputRejected) as caught:
        call(*args)
    return [str(issue) for issue in caught.value.issues]


# ---------------------------------------------------------------- text


def test_text_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n1,2\n")
    assert read_text(str(path)) == "a,b\n1,2\n"


def test_every_line_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n\xff,2\nok,3\n4,Jos\xe9\n")
    assert rejected(read_text, str(path)) == [
        f"{path}:2: is not UTF-8 text (byte 0xFF at column 1); save the file as UTF-8",
        f"{path}:4: is not UTF-8 text (byte 0xE9 at column 6); save the file as UTF-8",
    ]


@pytest.mark.parametrize("content", [b"", b" \n\r\n\t"])
def test_an_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    assert rejected(read_text, str(path)) == [f"{path}:1: the file is empty"]


def test_a_missing_file_is_refused_without_a_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert rejected(read_text, str(path)) == [f"{path}: cannot read the file: No such file or directory"]


# ---------------------------------------------------------------- CSV


def test_csv_rows_carry_the_line_they_start_on() -> None:
    table = read_csv("f.csv", '\n \n\na,b\n1,"two\nlines"\n\n3,4\n5\n')
    assert table.header == ["a", "b"]
    assert table.header_line == 4
    assert [(row.line, row.cells) for row in table.rows] == [
        (5, {"a": "1", "b": "two\nlines"}),
        (8, {"a": "3", "b": "4"}),
    ]
    assert [str(issue) for issue in table.issues] == ["f.csv:9: has 1 cells but the header has 2 columns"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,a\n1,2\n", ["f.csv:1: a: is a column more than once"]),
        ("a,,b\n1,2,3\n", ["f.csv:1: column 2 of the header has no name"]),
        ("a,b\n", ["f.csv:1: has a header but no rows"]),
        ('a,b\n"1"x,2\n', ["f.csv:2: is not valid CSV: ',' expected after '\"'"]),
    ],
)
def test_csv_that_cannot_be_read_as_a_table_is_refused(text: str, expected: list[str]) -> None:
    assert rejected(read_csv, "f.csv", text) == expected


# ---------------------------------------------------------------- JSON


def test_json_records_carry_the_line_they_start_on() -> None:
    text = '{\n  "customers": [\n    {"a": 1},\n\n    {"b":\n      2}, {"c": 3}\n  ],\n  "domains": [],\n  "x": 1\n}'
    sections = read_json_sections("f.json", text)
    assert [(r.line, r.value) for r in sections["customers"].items or []] == [
        (3, {"a": 1}),
        (5, {"b": 2}),
        (6, {"c": 3}),
    ]
    assert sections["domains"].items == []
    assert sections["x"].line == 9
    assert sections["x"].items is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"customers": [\n  {"a": 1}\n  {"b": 2}]}',
            "f.json:3: is not valid JSON: Expecting ',' delimiter (column 3)",
        ),
        ("[1, 2]", "f.json:1: must be a JSON object whose members are lists of records"),
    ],
)
def test_json_that_is_not_an_object_of_lists_is_refused(text: str, expected: str) -> None:
    assert rejected(read_json_sections, "f.json", text) == [expected]


# ---------------------------------------------------------------- reference data files


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_cells_become_the_json_the_api_takes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "engagements.csv",
        "engagement_id,name,payment_type,identifier_types,consent_window_days,criteria.segments,opens_on,closes_on,"
        "referral.enabled,referral.min_deal_size_usd,payment_rules.hourly_rate_usd,payment_rules.min_hours\n"
        "e-1, One ,fixed,domain; tpid;,30,,2026-01-01,2026-12-31,Yes,1000.50,,\n"
        "e-2,Two,variable,msx_opportunity_id,thirty,SMB,2026-01-01,2026-12-31,maybe,,120,8\n",
    )
    records, issues = reference_data.read_records([path])
    assert issues == []
    assert [r.body for r in records] == [
        {
            "engagement_id": "e-1",
            "name": "One",
            "payment_type": "fixed",
            "identifier_types": ["domain", "tpid"],
            "consent_window_days": 30,
            "opens_on": "2026-01-01",
            "closes_on": "2026-12-31",
            "referral": {"enabled": True, "min_deal_size_usd": 1000.5},
        },
        {
            "engagement_id": "e-2",
            "name": "Two",
            "payment_type": "variable",
            "identifier_types": ["msx_opportunity_id"],
            "consent_window_days": "thirty",  # sent as it is: the API names it
            "criteria": {"segments": ["SMB"]},
            "opens_on": "2026-01-01",
            "closes_on": "2026-12-31",
            "referral": {"enabled": "maybe"},
            "payment_rules": {"hourly_rate_usd": 120, "min_hours": 8},
        },
    ]


def test_records_load_in_kind_order_and_a_record_given_twice_is_named(tmp_path: Path) -> None:
    domains = write(tmp_path, "d.csv", "domain,tenant_id\nA.example,t1\na.example.,t2\n")
    json_path = write(
        tmp_path,
        "r.json",
        '{"domains": [{"domain": "b.example", "tenant_id": "t"}],\n'
        ' "engagements": [{"engagement_id": "e-1"}],\n "customers": [{"identifier_type": "tpid", "value": "1"}]}',
    )
    records, issues = reference_data.read_records([domains, json_path])
    assert [(r.kind.name, r.line) for r in records] == [
        ("engagements", 2),
        ("customers", 3),
        ("domains", 2),
        ("domains", 3),
        ("domains", 1),
    ]
    assert [str(i) for i in issues] == [f"{domains}:3: repeats the domains record of {domains}:2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"clients": []}',
            "{path}:1: clients: is not a kind of reference data; the kinds are engagements, "
            "locations, customers, domains",
        ),
        ('{"customers": {"a": 1}}', "{path}:1: customers: must be a list of records"),
        ('{"customers": [1]}', "{path}:1: each of customers must be a JSON object"),
        ('{"customers": []}', "{path}:1: holds no records"),
    ],
)
def test_json_members_that_are_not_lists_of_records_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "r.json", text)
    _, issues = reference_data.read_records([path])
    assert [str(i) for i in issues] == [expected.format(path=path)]


def test_a_csv_header_must_name_one_kind(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "domain,location_id\na,b\n")
    _, issues = reference_data.read_records([path])
    assert [i.line for i in issues] == [1]
    assert issues[0].message.startswith("the header does not say which records the file holds")
    assert "domains: domain, tenant_id" in issues[0].message


def test_a_file_of_another_extension_is_read_by_its_first_character(tmp_path: Path) -> None:
    json_path = write(tmp_path, "data.txt", '{"domains": [{"domain": "a.example", "tenant_id": "t"}]}')
    csv_path = write(tmp_path, "more.txt", "domain,tenant_id\nb.example,t\n")
    records, issues = reference_data.read_records([json_path, csv_path])
    assert issues == []
    assert [r.from_csv for r in records] == [False, True]


# ---------------------------------------------------------------- batches and the API's answers


class FakeApi:
    """Answers POST /ops/reference-data from a script: 413 above ``max_records``, else the handler's."""

    def __init__(self, max_records: int = 1000, errors: list[dict[str, str]] | None = None) -> None:
        self.max_records = max_records
        self.errors = errors or []
        self.sent: list[tuple[dict[str, Any], Any]] = []
        self.keys: list[str | None] = []

    def post(self, path: str, body: dict[str, list[Any]], *, query: Any = None, headers: Any = None) -> Answer:
        self.sent.append((body, query))
        self.keys.append((headers or {}).get("Idempotency-Key"))
        size = sum(len(v) for v in body.values())
        if size > self.max_records:
            return Answer("POST", path, 413, {}, {"code": "payload_too_large"})
        if self.errors and query:
            return Answer("POST", path, 422, {}, {"code": "validation_error", "errors": self.errors})
        return Answer("POST", path, 200, {}, {name: len(v) for name, v in body.items()})


def test_records_go_in_batches_split_by_count_and_size(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "domain,tenant_id\n" + "".join(f"d{n}.example,t\n" for n in range(7)))
    records, _ = reference_data.read_records([path])
    assert [len(b.records) for b in reference_data.batches(records, 3, 10_000)] == [3, 3, 1]
    assert [len(b.records) for b in reference_data.batches(records, 100, 100)] == [2, 2, 2, 1]


def test_a_batch_the_api_finds_too_large_is_split(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "domain,tenant_id\n" + "".join(f"d{n}.example,t\n" for n in range(5)))
    api = FakeApi(max_records=2)
    result = reference_data.load(api, [path], max_records=5)  # type: ignore[arg-type]
    assert result.counts["domains"] == 5
    assert [sum(len(v) for v in body.values()) for body, query in api.sent if not query] == [5, 2, 3, 1, 2]


def test_the_apis_errors_are_named_by_file_line_and_column(tmp_path: Path) -> None:
    engagements = write(
        tmp_path,
        "e.csv",
        "engagement_id,name,payment_type,identifier_types,opens_on,closes_on,criteria.countries\n"
        "e-1,One,fixed,domain,2026-01-01,2026-12-31,US;es\n",
    )
    domains = write(tmp_path, "d.json", '{"domains": [\n {"domain": "a.example", "tenant_id": "t"}]}')
    api = FakeApi(
        errors=[
            {"field": "engagements[0].criteria.countries[1]", "message": "String should match pattern '^[A-Z]{2}$'"},
            {"field": "engagements[0]", "message": "Value error, opens_on must not be after closes_on"},
            {"field": "domains[0].tenant_id", "message": "Value error, is not a valid tenant_id"},
            {"field": "domains[7].domain", "message": "is not valid"},
        ]
    )
    assert rejected(reference_data.load, api, [engagements, domains]) == [
        f"{domains}:2: tenant_id: is not a valid tenant_id",
        f"{engagements}: domains[7].domain: is not valid (in the batch from line 2)",
        f"{engagements}:2: opens_on must not be after closes_on",
        f"{engagements}:2: criteria.countries: String should match pattern '^[A-Z]{{2}}$'",
    ]
    assert all(query == {"dry_run": "true"} for _, query in api.sent)  # nothing was loaded


def test_a_dry_run_counts_without_loading(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "domain,tenant_id\na.example,t\n")
    api = FakeApi()
    assert reference_data.load(api, [path], dry_run=True).counts == {  # type: ignore[arg-type]
        "engagements": 0,
        "locations": 0,
        "customers": 0,
        "domains": 1,
    }
    assert [query for _, query in api.sent] == [{"dry_run": "true"}]


def test_each_batch_carries_an_idempotency_key_made_from_the_whole_request(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "domain,tenant_id\n" + "".join(f"d{n}.example,t\n" for n in range(5)))
    api = FakeApi(max_records=2)
    reference_data.load(api, [path], max_records=3)  # type: ignore[arg-type]
    keys = api.keys
    assert all(key and re.fullmatch(r"mci-cli-load-[0-9a-f]{64}", key) for key in keys)
    requests = [(json.dumps(body, sort_keys=True), json.dumps(query)) for body, query in api.sent]
    assert len(set(requests)) == len(set(keys))  # one key per request, another for each other request
    # the dry run and the load of the same batch are two requests to the API: two keys
    batch = {"domains": [{"domain": f"d{n}.example", "tenant_id": "t"} for n in range(3, 5)]}
    checked, loaded = (keys[api.sent.index((batch, query))] for query in ({"dry_run": "true"}, None))
    assert checked != loaded

    again = FakeApi(max_records=2)
    reference_data.load(again, [path], max_records=3)  # type: ignore[arg-type]
    assert again.keys == keys  # the same files, the same keys: a rerun is answered, not loaded again
    edited = write(tmp_path, "d.csv", "domain,tenant_id\n" + "".join(f"d{n}.example,u\n" for n in range(5)))
    other = FakeApi(max_records=2)
    reference_data.load(other, [edited], max_records=3)  # type: ignore[arg-type]
    assert not set(other.keys) & set(keys)


# ---------------------------------------------------------------- bulk rows


def bulk_row(**cells: str) -> bulk_add.BulkRow:
    base = {
        "friendly_name": " Fabrikam ",
        "location_id": "1234567",
        "identifier_type": "domain",
        "identifier_value": "Fabrikam.COM",
        "engagement_id": "e-azure-migrate",
        "customer_name": "Ana",
        "customer_email": "ana@fabrikam.com",
        "customer_language": "ES",
        "partner_name": "Sam",
        "partner_email": "sam@contoso.com",
    }
    return bulk_add.BulkRow("n.csv", 2, {**base, **cells})


def test_a_row_becomes_the_add_customer_request() -> None:
    assert bulk_row(hours="40", tenant_mismatch_reason="moved", partner_phone="+34 600 000 000").add_request == {
        "friendly_name": "Fabrikam",
        "location_id": "1234567",
        "identifier": {"type": "domain", "value": "fabrikam.com"},
        "engagement_ids": ["e-azure-migrate"],
        "customer_contact": {"name": "Ana", "email": "ana@fabrikam.com", "language": "es"},
        "partner_contact": {"name": "Sam", "email": "sam@contoso.com", "phone": "+34 600 000 000"},
        "hours": 40,
        "tenant_mismatch_reason": "moved",
    }


def test_the_idempotency_key_follows_the_request_body() -> None:
    key = bulk_row().idempotency_key
    assert key.startswith("mci-cli-add-")
    assert len(key) == len("mci-cli-add-") + 64
    assert bulk_row(identifier_value="fabrikam.com ").idempotency_key == key  # what the API sees is the same
    assert bulk_row(friendly_name="Fabrikam 2").idempotency_key != key
    assert bulk_row(identifier_type="tpid", identifier_value="ABC").add_request["identifier"]["value"] == "ABC"


def test_api_fields_are_named_by_their_columns() -> None:
    row = bulk_row()
    assert row.issue("customer_contact.email", "Value error, is not valid") == Issue(
        "n.csv", 2, "customer_email", "is not valid"
    )
    assert row.issue("engagement_ids[0]", "unknown engagement").field == "engagement_id"
    assert row.issue("body", "must be an object").field == "body"


@pytest.mark.parametrize(
    ("status", "body", "result", "reasons"),
    [
        (
            409,
            {"code": "duplicate_claim", "engagements": [{"reasons": [{"code": "duplicate_claim", "message": "m"}]}]},
            "ineligible",
            (("duplicate_claim", "m"),),
        ),
        (
            422,
            {"code": "validation_error", "errors": [{"field": "partner_contact.phone", "message": "bad"}]},
            "refused",
            (("validation_error", "partner_phone: bad"),),
        ),
        (
            422,
            {"code": "tenant_mismatch_reason_required", "detail": "give a reason"},
            "refused",
            (("tenant_mismatch_reason_required", "give a reason"),),
        ),
    ],
)
def test_a_refused_add_is_a_row_result(
    status: int, body: dict[str, Any], result: str, reasons: tuple[tuple[str, str], ...]
) -> None:
    refusal = bulk_add._refusal(bulk_row(), Answer("POST", "/customers", status, {}, body))
    assert (refusal.result, refusal.reasons) == (result, reasons)


def test_an_add_that_fails_otherwise_stops_the_run() -> None:
    with pytest.raises(Exception, match="answered 500"):
        bulk_add._refusal(bulk_row(), Answer("POST", "/customers", 500, {}, {"detail": "boom"}))


def test_results_go_beside_the_input_by_default() -> None:
    assert bulk_add.default_results_path("in/nominations.csv") == str(Path("in/nominations.results.csv"))
