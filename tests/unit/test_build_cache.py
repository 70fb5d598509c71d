"""tests/support/build_cache.py: a session's build done once for every xdist worker, keyed by its inputs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.build_cache import built_once


class Builds:
    """A build that writes its input's text, slowly enough for concurrent callers to overlap, and counts runs."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.runs = 0
        self.fail = False
        self._count = threading.Lock()

    def __call__(self, folder: Path) -> None:
        with self._count:
            self.runs += 1
        time.sleep(0.05)
        (folder / "out.txt").write_text(self.source.read_text())
        if self.fail:
            raise RuntimeError("the tool failed")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "openapi.json"
    path.write_text("one")
    return path


def test_concurrent_callers_build_once_and_share_the_folder(tmp_path: Path, source: Path) -> None:
    build = Builds(source)
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(max_workers=4) as pool:
        folders = list(pool.map(lambda _: built_once("client", [source, "tool 1.0"], build, root=cache), range(4)))

    assert build.runs == 1
    assert len(set(folders)) == 1
    assert (folders[0] / "out.txt").read_text() == "one"
    assert built_once("client", [source, "tool 1.0"], build, root=cache) == folders[0]
    assert build.runs == 1


def test_a_changed_input_builds_again_and_drops_the_stale_folder(tmp_path: Path, source: Path) -> None:
    build = Builds(source)
    cache = tmp_path / "cache"
    first = built_once("client", [source, "tool 1.0"], build, root=cache)
    source.write_text("two")
    second = built_once("client", [source, "tool 1.0"], build, root=cache)
    assert (second / "out.txt").read_text() == "two"
    third = built_once("client", [source, "tool 2.0"], build, root=cache)

    assert build.runs == 3
    assert len({first, second, third}) == 3
    assert [path for path in (cache / "client").iterdir() if path.is_dir()] == [third]


def test_a_failed_build_leaves_nothing_and_is_tried_again(tmp_path: Path, source: Path) -> None:
    build = Builds(source)
    build.fail = True
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="the tool failed"):
        built_once("client", [source], build, root=cache)
    assert [path for path in (cache / "client").iterdir() if path.is_dir()] == []

    build.fail = False
    folder = built_once("client", [source], build, root=cache)
    assert build.runs == 2
    assert (folder / "out.txt").read_text() == "one"
