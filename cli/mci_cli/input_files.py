"""Reading the operator's files: UTF-8 text, CSV rows and JSON records, each with the line it starts on.

Everything here is about the file, never about what a value means: that is the API's to judge.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mci_cli.report import InputRejected, Issue

MAX_BAD_LINES = 20


@dataclass(frozen=True)
class CsvRow:
    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class CsvTable:
    """The rows that read well, and the problems of those that did not (another number of cells)."""

    path: str
    header: list[str]
    header_line: int
    rows: list[CsvRow]
    issues: list[Issue]


@dataclass(frozen=True)
class JsonRecord:
    line: int
    value: Any


@dataclass(frozen=True)
class JsonSection:
    """A member of the top object: the line of its name, and its items (None when it is no list)."""

    line: int
    items: list[JsonRecord] | None


def read_text(path: str) -> str:
    """The file as text: UTF-8 (a byte-order mark is allowed), not empty. Refused naming each bad line."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InputRejected([Issue(path, None, "", f"cannot read the file: {error.strerror or error}")]) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputRejected(_encoding_issues(path, data)) from None
    if not text.strip():
        raise InputRejected([Issue(path, 1, "", "the file is empty")])
    return text


def _encoding_issues(path: str, data: bytes) -> list[Issue]:
    issues = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            byte = line[error.start]
            issues.append(
                Issue(
                    path,
                    number,
                    "",
                    f"is not UTF-8 text (byte 0x{byte:02X} at column {error.start + 1}); save the file as UTF-8",
                )
            )
            if len(issues) == MAX_BAD_LINES:
                break
    return issues


def read_csv(path: str, text: str) -> CsvTable:
    """Rows under a header row, blank lines skipped. Refused outright when there is no usable header or
    the text is not CSV; a row with another number of cells than the header is one of ``issues``."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[CsvRow] = []
    issues: list[Issue] = []
    last_line = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise InputRejected([Issue(path, reader.line_num, "", f"is not valid CSV: {error}")]) from None
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header, header_line = [cell.strip() for cell in cells], line
            if problems := _header_issues(path, line, header):
                raise InputRejected(problems)
            continue
        if len(cells) != len(header):
            issues.append(Issue(path, line, "", f"has {len(cells)} cells but the header has {len(header)} columns"))
            continue
        rows.append(CsvRow(line, dict(zip(header, cells, strict=True))))
    if header is None:
        raise InputRejected([Issue(path, 1, "", "the file is empty")])
    if not rows and not issues:
        raise InputRejected([Issue(path, header_line, "", "has a header but no rows")])
    return CsvTable(path, header, header_line, rows, issues)


def _header_issues(path: str, line: int, header: list[str]) -> list[Issue]:
    issues = []
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            issues.append(Issue(path, line, "", f"column {position} of the header has no name"))
        elif name in seen:
            issues.append(Issue(path, line, name, "is a column more than once"))
        seen.add(name)
    return issues


def check_columns(table: CsvTable, known: Sequence[str], required: Sequence[str]) -> list[Issue]:
    """Unknown and missing columns, on the header's line."""
    issues = [
        Issue(table.path, table.header_line, name, f"is not a column of this file; the columns are {', '.join(known)}")
        for name in table.header
        if name and name not in known
    ]
    issues.extend(
        Issue(table.path, table.header_line, name, "is a required column and is missing")
        for name in required
        if name not in table.header
    )
    return issues


def read_json_sections(path: str, text: str) -> dict[str, JsonSection]:
    """A JSON object of lists (``{"customers": [{...}, ...]}``): each list's items with their lines."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"is not valid JSON: {error.msg} (column {error.colno})"
        raise InputRejected([Issue(path, error.lineno, "", message)]) from None
    if not isinstance(document, dict):
        raise InputRejected([Issue(path, 1, "", "must be a JSON object whose members are lists of records")])
    return _SectionScanner(text).sections()


class _SectionScanner:
    """Walks the two outer levels of a JSON text already known to be valid, noting where values start."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.decoder = json.JSONDecoder()
        self.position = 0
        self.line = 1
        self._counted_to = 0

    def sections(self) -> dict[str, JsonSection]:
        found: dict[str, JsonSection] = {}
        self._expect("{")
        while self._peek() != "}":
            line = self._line_here()
            key = self._value()
            self._expect(":")
            if self._peek() == "[":
                found[key] = JsonSection(line, self._items())
            else:
                self._value()
                found[key] = JsonSection(line, None)
            if self._peek() == ",":
                self._expect(",")
        return found

    def _items(self) -> list[JsonRecord]:
        items = []
        self._expect("[")
        while self._peek() != "]":
            line = self._line_here()
            items.append(JsonRecord(line, self._value()))
            if self._peek() == ",":
                self._expect(",")
        self._expect("]")
        return items

    def _value(self) -> Any:
        self._skip_space()
        value, self.position = self.decoder.raw_decode(self.text, self.position)
        return value

    def _peek(self) -> str:
        self._skip_space()
        return self.text[self.position]

    def _expect(self, char: str) -> None:
        self._skip_space()
        assert self.text[self.position] == char
        self.position += 1

    def _skip_space(self) -> None:
        while self.text[self.position] in " \t\r\n":
            self.position += 1

    def _line_here(self) -> int:
        self._skip_space()
        self.line += self.text.count("\n", self._counted_to, self.position)
        self._counted_to = self.position
        return self.line
