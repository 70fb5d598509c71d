"""Work a test session needs once, done once for every test process: a folder under ``.cache/`` (git-ignored).

pytest-xdist workers are separate processes, each with its own session fixtures, so a session fixture that
builds something from files (the generated API clients) builds it again in every worker that runs one of its
tests. ``built_once(kind, inputs, build)`` keys the folder by the hash of everything the build reads, builds
it under a file lock (the first process builds, the others wait and reuse it) and keeps it for later runs;
a change to any input is a new key, so nothing stale is ever reused. A build that fails leaves no folder
behind: every process that needs it tries again and fails the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = ROOT / ".cache"
DONE = ".built"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One process at a time across processes (xdist workers, two test runs starting together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest(*inputs: Path | str) -> str:
    """The hash of files' contents (a Path) and of texts (a tool's command line, a version), in order."""
    hashed = hashlib.sha256()
    for item in inputs:
        data = item.read_bytes() if isinstance(item, Path) else item.encode()
        hashed.update(len(data).to_bytes(8, "big"))
        hashed.update(data)
    return hashed.hexdigest()[:16]


def built_once(kind: str, inputs: list[Path | str], build: Callable[[Path], None], root: Path = CACHE_ROOT) -> Path:
    """``root/kind/<hash of inputs>``, made by ``build(folder)`` unless an earlier process made it already.

    Older keys of the same kind are removed when a new one is built (the inputs changed since).
    """
    folder = root / kind / digest(*inputs)
    if (folder / DONE).is_file():
        return folder
    with locked(root / kind / ".lock"):
        if (folder / DONE).is_file():
            return folder
        for stale in (root / kind).iterdir():
            if stale.is_dir():
                shutil.rmtree(stale)
        building = folder.with_name(f"{folder.name}.building")
        building.mkdir(parents=True)
        try:
            build(building)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        (building / DONE).touch()
        building.rename(folder)
    return folder
