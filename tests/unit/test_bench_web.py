"""The web section of ``make bench`` without a browser: what counts as an API call, and its report lines."""

from __future__ import annotations

from bench import web
from bench.report import table


def row(method: str, path: str, raw: int = 100, gzipped: int = 40) -> dict[str, object]:
    return {"method": method, "path": path, "bytes": raw, "gzip_bytes": gzipped}


def test_only_api_requests_count_as_api_calls() -> None:
    rows = [
        row("GET", "/app/"),
        row("GET", "/app/js/main.js"),
        row("POST", "/_local/tokens"),
        row("GET", "/engagements"),
        row("GET", "/engagements/e-azure-migrate/customers"),
    ]
    assert web._api(rows) == ["GET /engagements", "GET /engagements/e-azure-migrate/customers"]


def test_the_section_reads_as_a_table() -> None:
    section = {
        "target": "first useful screen <= 150 KB gzip",
        "met": True,
        "first_screen": {
            "requests": 2,
            "bytes": 2048,
            "gzip_bytes": 1024,
            "api_calls": ["GET /engagements"],
            "largest": [row("GET", "/app/js/main.js", 1500, 700)],
        },
        "tabs": {"eligible": {"api_calls": 1, "calls": ["GET /engagements/e/customers"]}},
    }
    text = table({"sections": {"web": section}})
    assert "== web  [ok]" in text
    assert "2 requests, 1.0 KB gzip (2.0 KB raw)" in text
    assert "/app/js/main.js 0.7 KB" in text
    assert "tab eligible    1 API call(s): GET /engagements/e/customers" in text
