"""The longest modules run first (tests/conftest.py, LONGEST_FIRST), so a parallel run ends on short tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests import conftest


def item(path: str, name: str) -> Any:
    return SimpleNamespace(path=conftest.ROOT / path, name=name)


def test_every_longest_first_entry_is_a_test_module_once() -> None:
    for path in conftest.LONGEST_FIRST:
        assert (conftest.ROOT / path).is_file(), f"{path} is gone: take it out of LONGEST_FIRST or rename it there"
    assert len(set(conftest.LONGEST_FIRST)) == len(conftest.LONGEST_FIRST)


def test_the_longest_modules_come_first_in_their_order_and_the_rest_keeps_its_order() -> None:
    longest, second = conftest.LONGEST_FIRST[:2]
    items = [
        item("tests/unit/test_a.py", "a1"),
        item(second, "second 1"),
        item("tests/unit/test_a.py", "a2"),
        item(longest, "longest 1"),
        item(second, "second 2"),
        item("tests/e2e/test_b.py", "b1"),
        item(longest, "longest 2"),
    ]

    conftest.pytest_collection_modifyitems(items)

    assert [i.name for i in items] == ["longest 1", "longest 2", "second 1", "second 2", "a1", "a2", "b1"]
