"""Problems in the operator's input, each naming its file, line and field, and how they are printed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

MAX_PRINTED = 200


@dataclass(frozen=True, order=True)
class Issue:
    """One problem of an input file. ``line`` is None for the file as a whole; ``field`` may be empty."""

    path: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InputRejected(Exception):
    """The input has problems: nothing was sent that changes anything (exit code 1)."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = sorted(set(issues), key=_order)
        super().__init__(f"{len(self.issues)} problem(s) in the input")


def _order(issue: Issue) -> tuple[str, int, str, str]:
    return (issue.path, issue.line or 0, issue.field, issue.message)


def print_issues(issues: list[Issue], stream: TextIO, limit: int = MAX_PRINTED) -> None:
    for issue in issues[:limit]:
        print(issue, file=stream)
    if len(issues) > limit:
        print(f"... and {len(issues) - limit} more", file=stream)
