"""The operations CLI (issue 8) against the local stack: every command, malformed files, an interrupted bulk run.

The CLI runs in process (``mci_cli.main.main``) against a stack of this module's own, so the demo data
it changes never meets the tier's shared stack; one test runs the installed ``mci`` console script.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mci_cli import main as cli_main
from mci_cli.api import ApiClient
from tests.e2e.conftest import ROOT, StackClient, running_stack

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "cli" / "examples"
CONTOSO = "p-contoso-partners"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BULK_HEADER = (
    "friendly_name,location_id,identifier_type,identifier_value,engagement_id,hours,tenant_mismatch_reason,"
    "customer_name,customer_email,customer_phone,customer_language,partner_name,partner_email,partner_phone"
)


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """``mci`` in process, against this module's stack."""

    stack: StackClient

    def token(self, partner_id: str, role: str) -> str:
        return self.stack.token(partner_id, [role])

    def run(self, *argv: str, token: str | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        connection = ["--api-url", self.stack.url, *(["--token", token] if token else [])]
        code = cli_main.main([*argv, *connection], out=out, err=err)
        return Run(code, out.getvalue(), err.getvalue())

    def ops(self, *argv: str) -> Run:
        return self.run(*argv, token=self.token("mci-operations", "mci_operations"))

    def partner(self, partner_id: str, *argv: str) -> Run:
        return self.run(*argv, token=self.token(partner_id, "incentives_user"))


@pytest.fixture(scope="module")
def stack() -> Iterator[StackClient]:
    with running_stack(LOCAL_SWEEP_SECONDS="0", LOCAL_EVENTS_POLL_SECONDS="0") as client:
        yield client


@pytest.fixture
def cli(stack: StackClient, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("MCI_API_URL", raising=False)
    monkeypatch.delenv("MCI_TOKEN", raising=False)
    return Cli(stack)


def read_csv(path: Path | str) -> list[dict[str, str]]:
    with Path(path).open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------- the README, on the demo data


def test_each_command_on_the_demo_data(cli: Cli, tmp_path: Path) -> None:
    loaded = cli.ops(
        "reference-data",
        "load",
        str(EXAMPLES / "engagements.csv"),
        str(EXAMPLES / "locations.csv"),
        str(EXAMPLES / "customers.json"),
    )
    assert loaded.code == 0, loaded.err
    assert loaded.out == "Loaded 2 engagements, 2 locations, 3 customers, 1 domains from 3 files in 1 batch(es).\n"
    again = cli.ops("reference-data", "load", str(EXAMPLES / "engagements.csv"))
    assert again.code == 0, again.err  # upserts: safe to rerun

    nominations = tmp_path / "nominations.csv"
    shutil.copy(EXAMPLES / "nominations.csv", nominations)
    added = cli.partner(CONTOSO, "customers", "add-bulk", str(nominations))
    assert added.code == 0, added.err
    results_path = tmp_path / "nominations.results.csv"
    assert added.out == f"12 rows: 7 added, 5 ineligible, 0 refused. Results: {results_path}\n"
    results = read_csv(results_path)
    assert [(r["line"], r["result"], r["reason_codes"]) for r in results] == [
        ("2", "added", ""),
        ("3", "added", ""),
        ("4", "added", ""),
        ("5", "added", ""),
        ("6", "added", ""),
        ("7", "added", ""),
        ("8", "added", ""),
        ("9", "ineligible", "criteria_not_met"),
        ("10", "ineligible", "criteria_not_met"),
        ("11", "ineligible", "engagement_closed;identifier_type_not_accepted"),
        ("12", "ineligible", "location_not_enrolled;location_not_eligible"),
        ("13", "ineligible", "customer_not_found"),
    ]
    for row in results:
        assert bool(UUID.fullmatch(row["claim_id"])) is (row["result"] == "added")
        assert row["state"] == ("pending_consent" if row["result"] == "added" else "")
        assert row["reasons"] or row["result"] == "added"

    exported = cli.partner(CONTOSO, "customers", "export", "e-azure-migrate", "--tab", "eligible")
    assert exported.code == 0, exported.err
    migrate_claims = {r["claim_id"] for r in results if r["engagement_id"] == "e-azure-migrate" and r["claim_id"]}
    assert {r["claim_id"] for r in parse_csv(exported.out)} == migrate_claims
    assert exported.err == "2 rows exported\n"

    ineligible = cli.partner(CONTOSO, "customers", "export", "e-ai-accelerate", "--tab", "ineligible")
    assert ineligible.code == 0, ineligible.err
    assert parse_csv(ineligible.out) == []
    assert ineligible.err.startswith("note: This engagement accepts only MSX opportunity ids")


def test_the_console_script(stack: StackClient, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "mci"
    assert script.exists(), "the mci console script is not installed: run make venv (pip install -e .)"
    helped = subprocess.run([script, "--help"], capture_output=True, text=True, check=False, timeout=30)
    assert helped.returncode == 0
    assert "exit codes:" in helped.stdout
    environment = {**os.environ, "MCI_API_URL": stack.url}
    token = subprocess.run(
        [script, "local-token", "--partner", CONTOSO, "--role", "incentives_user"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=30,
    )
    assert token.returncode == 0, token.stderr
    environment["MCI_TOKEN"] = token.stdout.strip()
    target = tmp_path / "complete.csv"
    exported = subprocess.run(
        [script, "customers", "export", "e-azure-migrate", "--tab", "complete", "-o", str(target)],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=30,
    )
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == f"0 rows exported to {target}\n"
    assert target.read_text(encoding="utf-8").splitlines()[0].startswith("kind,claim_id,")
    missing = subprocess.run(
        [script, "customers", "export", "e-azure-migrate"], capture_output=True, text=True, check=False, timeout=30
    )
    assert missing.returncode == 2
    assert "--tab" in missing.stderr


# ---------------------------------------------------------------- malformed files change nothing

FRESH_DOMAIN = "cli-fresh.example"
FRESH_TENANT = "5f1c2a3b-0000-4000-8000-0000000000f1"
FRESH_LOCATION = "2999001"


def _fresh_reference_is_absent(cli: Cli) -> None:
    """Neither the domain nor the location the malformed loads carry beside their bad record exists."""
    token = cli.token(CONTOSO, "incentives_user")
    locations = cli.stack.request("GET", "/locations", token=token).json()["items"]
    assert FRESH_LOCATION not in {loc["location_id"] for loc in locations}
    preview = cli.stack.request(
        "POST",
        "/eligibility-checks",
        {"location_id": "1234567", "identifier": {"type": "domain", "value": FRESH_DOMAIN}},
        token=token,
    ).json()
    assert preview["eligible"] == []
    assert {r["code"] for i in preview["ineligible"] for r in i["reasons"]} >= {"customer_not_found"}


GOOD_DOMAINS = f"domain,tenant_id\n{FRESH_DOMAIN},{FRESH_TENANT}\n"
GOOD_LOCATIONS = (
    f"location_id,partner_id,name,enrolled_in_mci,eligible_engagements\n"
    f"{FRESH_LOCATION},{CONTOSO},Contoso Partners Porto,true,e-azure-migrate\n"
)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        pytest.param(
            "customers.csv",
            b"identifier_type,value,name,segment,country,colour\ntpid,42,Ok,SMB,US,red\n",
            [
                "{path}:1: colour: is not a column of this file; the columns are identifier_type, value, name, "
                "segment, country, cosell_allowed, opportunity_value_usd"
            ],
            id="unknown-column",
        ),
        pytest.param(
            "customers.csv",
            b"identifier_type,value,name,country\ntpid,42,Ok,US\n",
            ["{path}:1: segment: is a required column and is missing"],
            id="missing-column",
        ),
        pytest.param(
            "customers.csv",
            b"identifier_type,value,name,segment,country\ntpid,42,Ok,SMB,US\ntpid,43,Caf\xe9 Oporto,SMB,PT\n",
            ["{path}:3: is not UTF-8 text (byte 0xE9 at column 12); save the file as UTF-8"],
            id="latin-1",
        ),
        pytest.param(
            "customers.csv",
            b"identifier_type,value,name,segment,country\ntpid,42,Ok,SMB,US\n"
            b"tenant_id,5f1c2a3b-XXXX,Bad,SMB,US\ntpid,44,Short,SMB,US,extra\n",
            [
                "{path}:3: value: is not a valid tenant_id: expected a GUID such as "
                "5f1c2a3b-0000-4000-8000-000000000001",
                "{path}:4: has 6 cells but the header has 5 columns",
            ],
            id="identifier-of-the-wrong-shape",
        ),
        pytest.param("customers.csv", b"", ["{path}:1: the file is empty"], id="empty"),
        pytest.param("customers.csv", b"\n  \n", ["{path}:1: the file is empty"], id="blank"),
        pytest.param(
            "customers.csv",
            b"identifier_type,value,name,segment,country\n",
            ["{path}:1: has a header but no rows"],
            id="header-only",
        ),
        pytest.param(
            "customers.json",
            b'{\n  "customers": [\n    {"identifier_type": "tpid", "value": "42", "name": "Ok",\n'
            b'     "segment": "SMB", "country": "US"},\n'
            b'    {"identifier_type": "subscription_id", "value": "sub-1", "name": "Bad",\n'
            b'     "segment": "SMB", "country": "US", "cosell": true}\n  ]\n}\n',
            [
                "{path}:5: cosell: Extra inputs are not permitted",
                "{path}:5: value: is not a valid subscription_id: expected a GUID such as "
                "5f1c2a3b-0000-4000-8000-000000000001",
            ],
            id="json-records",
        ),
        pytest.param(
            "customers.json",
            b'{"customers": [\n  {"identifier_type": "tpid"},\n]}\n',
            ["{path}:3: is not valid JSON: Expecting value (column 1)"],
            id="json-syntax",
        ),
    ],
)
def test_a_malformed_reference_file_is_reported_by_line_and_changes_nothing(
    cli: Cli, tmp_path: Path, name: str, content: bytes, expected: list[str]
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    domains, locations = tmp_path / "domains.csv", tmp_path / "locations.csv"
    domains.write_text(GOOD_DOMAINS, encoding="utf-8")
    locations.write_text(GOOD_LOCATIONS, encoding="utf-8")

    run = cli.ops("reference-data", "load", str(domains), str(bad), str(locations))

    assert run.code == 1
    assert run.out == ""
    lines = run.err.splitlines()
    assert lines[:-1] == [line.format(path=bad) for line in expected]
    assert lines[-1] == f"mci: {len(expected)} problem(s) in the input; nothing was changed"
    _fresh_reference_is_absent(cli)


def test_a_dry_run_validates_everything_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    domains, locations = tmp_path / "domains.csv", tmp_path / "locations.csv"
    domains.write_text(GOOD_DOMAINS, encoding="utf-8")
    locations.write_text(GOOD_LOCATIONS, encoding="utf-8")
    run = cli.ops("reference-data", "load", "--dry-run", str(domains), str(locations))
    assert run.code == 0, run.err
    assert run.out == (
        "Valid: 0 engagements, 1 locations, 0 customers, 1 domains in 2 files. Nothing was written (--dry-run).\n"
    )
    _fresh_reference_is_absent(cli)


ONCE = "e-cli-once"
ONCE_PARTNER, ONCE_LOCATION = "p-cli-once", "2400001"


def once_engagement(name: str) -> dict[str, Any]:
    return {
        "engagement_id": ONCE,
        "name": name,
        "payment_type": "fixed",
        "identifier_types": ["domain"],
        "opens_on": "2026-01-01",
        "closes_on": "2099-12-31",
    }


def once_name(cli: Cli) -> str:
    token = cli.token(ONCE_PARTNER, "incentives_user")
    items = cli.stack.request("GET", "/engagements", token=token).json()["items"]
    (name,) = [e["name"] for e in items if e["engagement_id"] == ONCE]
    return str(name)


def test_a_batch_whose_answer_is_lost_is_loaded_once(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    location = {
        "location_id": ONCE_LOCATION,
        "partner_id": ONCE_PARTNER,
        "name": "Once",
        "enrolled_in_mci": True,
        "eligible_engagements": [ONCE],
    }
    source = tmp_path / "once.json"
    source.write_text(json.dumps({"engagements": [once_engagement("First")], "locations": [location]}), "utf-8")
    operations = cli.token("mci-operations", "mci_operations")

    # The load reaches the API and is written; its answer is lost. Before the client sends the batch again,
    # another load renames the engagement: a batch loaded twice would put the first name back.
    real_send = ApiClient._send
    lost: list[str] = []

    def loses_the_first_loads_answer(self: ApiClient, method: str, path: str, url: str, *rest: Any) -> Any:
        answer = real_send(self, method, path, url, *rest)
        if path == "/ops/reference-data" and "dry_run" not in url and not lost:
            lost.append(url)
            later = cli.stack.request(
                "POST", "/ops/reference-data", {"engagements": [once_engagement("Later")]}, token=operations
            )
            assert later.status == 200, later.text
            raise urllib.error.URLError("connection reset by peer")
        return answer

    with monkeypatch.context() as patched:
        patched.setattr(ApiClient, "_send", loses_the_first_loads_answer)
        run = cli.ops("reference-data", "load", str(source))
    assert lost
    assert run.code == 0, run.err
    assert run.out == "Loaded 1 engagements, 1 locations, 0 customers, 0 domains from 1 file in 1 batch(es).\n"
    assert once_name(cli) == "Later"  # the batch sent again was answered, not loaded again

    # A rerun of the same files within the API's idempotency window is answered the same way.
    rerun = cli.ops("reference-data", "load", str(source))
    assert (rerun.code, rerun.out) == (0, run.out)
    assert once_name(cli) == "Later"


def test_loading_needs_the_operations_role(cli: Cli) -> None:
    run = cli.partner(CONTOSO, "reference-data", "load", str(EXAMPLES / "locations.csv"))
    assert run.code == 3
    # A partner token lacks the mci/operations scope: API Gateway refuses it before the handler (issue 12 item 7).
    assert run.err == "mci: error: the token lacks a role this needs (403): Forbidden\n"


def test_an_expired_token_is_an_api_error(cli: Cli) -> None:
    expired = cli.stack.token(CONTOSO, ["incentives_user"], expires_in=-60)
    run = cli.run("customers", "export", "e-azure-migrate", "--tab", "eligible", token=expired)
    assert run.code == 3
    assert run.err.startswith("mci: error: the API refused the token (401 Unauthorized")


def test_an_unknown_engagement_cannot_be_exported(cli: Cli) -> None:
    run = cli.partner(CONTOSO, "customers", "export", "e-no-such-thing", "--tab", "eligible")
    assert run.code == 3
    assert "no engagement 'e-no-such-thing' (404)" in run.err


# ---------------------------------------------------------------- bulk nomination

BULK = "e-cli-bulk"
BULK_CLOSED = "e-cli-bulk-closed"
PARTNERS = {"p-cli-a": ("2100001", "2100002"), "p-cli-b": ("2200001", "2200002"), "p-cli-c": ("2300001", "2300002")}
BULK_REFERENCE = {
    "engagements": [
        {
            "engagement_id": BULK,
            "name": "CLI bulk engagement",
            "payment_type": "fixed",
            "identifier_types": ["domain", "tenant_id", "tpid"],
            "max_active_claims_per_customer": 10,
            "opens_on": "2026-01-01",
            "closes_on": "2099-12-31",
        },
        {
            "engagement_id": BULK_CLOSED,
            "name": "CLI closed engagement",
            "payment_type": "fixed",
            "identifier_types": ["domain", "tenant_id", "tpid"],
            "opens_on": "2020-01-01",
            "closes_on": "2020-12-31",
        },
    ],
    "locations": [
        {
            "location_id": location,
            "partner_id": partner,
            "name": f"{partner} {'enrolled' if enrolled else 'not enrolled'}",
            "enrolled_in_mci": enrolled,
            "eligible_engagements": [BULK, BULK_CLOSED],
        }
        for partner, locations in PARTNERS.items()
        for location, enrolled in zip(locations, (True, False), strict=True)
    ],
    "customers": [
        {
            "identifier_type": "tenant_id",
            "value": f"5f1c2a3b-0000-4000-8000-0000000001{n:02d}",
            "name": f"Bulk {n}",
            "segment": "SMB",
            "country": "US",
        }
        for n in range(1, 8)
    ]
    + [{"identifier_type": "tpid", "value": "900000001", "name": "Bulk tpid", "segment": "SMB", "country": "US"}],
    "domains": [
        {"domain": f"bulk{n}.example", "tenant_id": f"5f1c2a3b-0000-4000-8000-0000000001{n:02d}"} for n in range(1, 8)
    ],
}


def bulk_rows(enrolled: str, not_enrolled: str) -> list[str]:
    contact = "Pat Doe,pat@bulk{n}.example,,en,Sam Lee,sam@partner.example,"
    return [
        f"Bulk one,{enrolled},domain,bulk1.example,{BULK},,,{contact.format(n=1)}",
        f"Bulk tpid,{enrolled},tpid,900000001,{BULK},,,Kim Roe,kim@bulk2.example,,en,Sam Lee,sam@partner.example,",
        # line 2's customer again, by its tenant id: this partner's claim from line 2 stands in the way
        f"Bulk one again,{enrolled},tenant_id,5f1c2a3b-0000-4000-8000-000000000101,{BULK},,,{contact.format(n=1)}",
        f"Bulk closed,{enrolled},domain,bulk3.example,{BULK_CLOSED},,,{contact.format(n=3)}",
        f"Bulk not enrolled,{not_enrolled},domain,bulk4.example,{BULK},,,{contact.format(n=4)}",
        f"Bulk unknown,{enrolled},domain,nobody.example,{BULK},,,Jo Doe,jo@nobody.example,,en,"
        "Sam Lee,sam@partner.example,",
        f"Bulk five,{enrolled},domain,bulk5.example,{BULK},,,{contact.format(n=5)}",
        f"Bulk six,{enrolled},domain,bulk6.example,{BULK},,,Pat Doe,pat@bulk6.example,,fr,Sam Lee,sam@partner.example,",
        f"Bulk seven,{enrolled},domain,BULK7.example,{BULK},,,{contact.format(n=7)}",
        f"Bulk two,{enrolled},domain,bulk2.example,{BULK},,,{contact.format(n=2)}",
    ]


def bulk_file(path: Path, partner: str) -> Path:
    path.write_text("\n".join([BULK_HEADER, *bulk_rows(*PARTNERS[partner])]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bulk_reference(stack: StackClient) -> None:
    token = stack.token("mci-operations", ["mci_operations"])
    answer = stack.request("POST", "/ops/reference-data", BULK_REFERENCE, token=token)
    assert answer.status == 200, answer.text


def normalised(text: str, partner: str) -> str:
    """Claim ids numbered in order of appearance, the partner's location ids made generic."""
    numbers: dict[str, str] = {}
    text = UUID.sub(lambda m: numbers.setdefault(m.group(0), f"<claim {len(numbers) + 1}>"), text)
    enrolled, not_enrolled = PARTNERS[partner]
    return text.replace(enrolled, "<enrolled>").replace(not_enrolled, "<not enrolled>")


def server_claims(cli: Cli, partner: str, directory: Path) -> str:
    """The partner's Customers page of the bulk engagement, as the CLI exports it, normalised."""
    run = cli.partner(partner, "customers", "export", BULK, "--tab", "eligible", "--page-size", "2")
    assert run.code == 0, run.err
    rows = parse_csv(run.out)
    whole = cli.partner(partner, "customers", "export", BULK, "--tab", "eligible")
    assert parse_csv(whole.out) == rows  # pages of 2 followed to the end: the same as one page of 100
    results = parse_csv((directory / f"{partner}.results.csv").read_text(encoding="utf-8"))
    assert {r["claim_id"] for r in rows} == {r["claim_id"] for r in results if r["claim_id"]}
    lines = sorted(f"{r['friendly_name']} {r['identifier_value']} {r['state']} {r['claim_id']}" for r in rows)
    return normalised("\n".join(lines), partner)


EXPECTED_BULK = [
    ("2", "added", ""),
    ("3", "added", ""),
    ("4", "ineligible", "duplicate_claim"),
    ("5", "ineligible", "engagement_closed"),
    ("6", "ineligible", "location_not_enrolled"),
    ("7", "ineligible", "customer_not_found"),
    ("8", "added", ""),
    ("9", "refused", "validation_error"),
    ("10", "added", ""),
    ("11", "added", ""),
]


@pytest.mark.usefixtures("bulk_reference")
def test_a_bulk_run_interrupted_and_rerun_ends_as_a_clean_run(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = cli.partner("p-cli-a", "customers", "add-bulk", str(bulk_file(tmp_path / "p-cli-a.csv", "p-cli-a")))
    assert clean.code == 0, clean.err
    assert clean.out.startswith("10 rows: 5 added, 4 ineligible, 1 refused.")
    clean_results = (tmp_path / "p-cli-a.results.csv").read_text(encoding="utf-8")
    assert [(r["line"], r["result"], r["reason_codes"]) for r in parse_csv(clean_results)] == EXPECTED_BULK
    refused = parse_csv(clean_results)[7]
    assert refused["reasons"] == "customer_language: Input should be 'en' or 'es'"

    # Partner B: the third add reaches the API and is committed, then the client dies before it hears back.
    sent_adds = 0
    real_post = ApiClient.post

    def dies_after_the_third_add(self: ApiClient, path: str, body: Any, **options: Any) -> Any:
        nonlocal sent_adds
        answer = real_post(self, path, body, **options)
        if path == "/customers" and answer.status == 201:
            sent_adds += 1
            if sent_adds == 3:
                raise KeyboardInterrupt
        return answer

    source = bulk_file(tmp_path / "p-cli-b.csv", "p-cli-b")
    with monkeypatch.context() as patched:
        patched.setattr(ApiClient, "post", dies_after_the_third_add)
        interrupted = cli.partner("p-cli-b", "customers", "add-bulk", str(source))
    assert interrupted.code == 130
    assert "rerunning the same command is safe" in interrupted.err
    partial = parse_csv((tmp_path / "p-cli-b.results.csv").read_text(encoding="utf-8"))
    assert [r["line"] for r in partial] == ["2", "3", "4", "5", "6", "7"]  # line 8's add never got its answer

    rerun = cli.partner("p-cli-b", "customers", "add-bulk", str(source))
    assert rerun.code == 0, rerun.err
    assert rerun.out == clean.out.replace("p-cli-a.results.csv", "p-cli-b.results.csv")
    rerun_results = (tmp_path / "p-cli-b.results.csv").read_text(encoding="utf-8")
    assert normalised(rerun_results, "p-cli-b") == normalised(clean_results, "p-cli-a")
    # the claims added before the interruption are the ones the rerun reports: nothing was added twice
    assert [r["claim_id"] for r in parse_csv(rerun_results)[:6]] == [r["claim_id"] for r in partial]
    assert server_claims(cli, "p-cli-b", tmp_path) == server_claims(cli, "p-cli-a", tmp_path)
    assert len(parse_csv(cli.partner("p-cli-b", "customers", "export", BULK, "--tab", "eligible").out)) == 5

    # and a third run, over a complete one, changes nothing either
    third = cli.partner("p-cli-b", "customers", "add-bulk", str(source))
    assert third.code == 0, third.err
    assert (tmp_path / "p-cli-b.results.csv").read_text(encoding="utf-8") == rerun_results


@pytest.mark.usefixtures("bulk_reference")
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            b"friendly_name,location,identifier_type,identifier_value,engagement_id\nA,2300001,domain,bulk1.example,"
            + BULK.encode()
            + b"\n",
            [
                "{path}:1: customer_email: is a required column and is missing",
                "{path}:1: customer_name: is a required column and is missing",
                "{path}:1: location: is not a column of this file; the columns are "
                + ", ".join(BULK_HEADER.split(",")),
                "{path}:1: location_id: is a required column and is missing",
                "{path}:1: partner_email: is a required column and is missing",
                "{path}:1: partner_name: is a required column and is missing",
            ],
            id="wrong-columns",
        ),
        pytest.param(
            "\n".join([BULK_HEADER, *bulk_rows(*PARTNERS["p-cli-c"])[:2]]).encode() + b"\n"
            b"Caf\xe9,2300001,domain,bulk3.example," + BULK.encode() + b",,,A,a@bulk3.example,,en,S,s@p.example,\n",
            ["{path}:4: is not UTF-8 text (byte 0xE9 at column 4); save the file as UTF-8"],
            id="latin-1",
        ),
        pytest.param(
            "\n".join(
                [
                    BULK_HEADER,
                    *bulk_rows(*PARTNERS["p-cli-c"])[:2],
                    f"Bad,2300001,tenant_id,not-a-guid,{BULK},,,A,a@bulk3.example,,en,S,s@p.example,",
                    f"Bad location,2100001,domain,bulk3.example,{BULK},,,A,a@bulk3.example,,en,S,s@p.example,",
                    "Bad engagement,2300001,domain,bulk3.example,e-nope,,,A,a@bulk3.example,,en,S,s@p.example,",
                    f"No contact,2300001,domain,bulk4.example,{BULK},x,,,a@bulk4.example,,en,S,s@p.example,",
                    f"Mismatch,2300001,tenant_id,5f1c2a3b-0000-4000-8000-000000000105,{BULK},,,A,a@bulk4.example,,en,"
                    "S,s@p.example,",
                    f"Twice,2300001,domain,BULK1.example,{BULK},,,A,a@bulk1.example,,en,S,s@p.example,",
                ]
            ).encode()
            + b"\n",
            [
                "{path}:4: identifier_value: is not a valid tenant_id: expected a GUID such as "
                "5f1c2a3b-0000-4000-8000-000000000001",
                "{path}:5: location_id: is not a location of your organisation",
                "{path}:6: engagement_id: is not an engagement the API knows",
                "{path}:7: customer_name: is required",
                "{path}:7: hours: must be a whole number of hours",
                "{path}:8: tenant_mismatch_reason: is required: the tenant id is not the tenant of the customer "
                "contact's email domain",
                "{path}:9: repeats the customer, location and engagement of line 2; one row each",
            ],
            id="bad-rows",
        ),
        pytest.param(b"", ["{path}:1: the file is empty"], id="empty"),
        pytest.param(BULK_HEADER.encode() + b"\n", ["{path}:1: has a header but no rows"], id="header-only"),
    ],
)
def test_a_malformed_bulk_file_is_reported_by_line_and_adds_nothing(
    cli: Cli, tmp_path: Path, content: bytes, expected: list[str]
) -> None:
    source = tmp_path / "nominations.csv"
    source.write_bytes(content)

    run = cli.partner("p-cli-c", "customers", "add-bulk", str(source))

    assert run.code == 1
    assert run.out == ""
    lines = run.err.splitlines()
    assert lines[:-1] == [line.format(path=source) for line in expected]
    assert lines[-1] == f"mci: {len(expected)} problem(s) in the input; nothing was changed"
    assert not (tmp_path / "nominations.results.csv").exists()
    exported = cli.partner("p-cli-c", "customers", "export", BULK, "--tab", "eligible")
    assert parse_csv(exported.out) == []
