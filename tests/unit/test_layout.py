"""Structure is visible (issue 13): every package says what lives in it, and the README maps every top folder."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tracked(pattern: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in listed.stdout.splitlines()]


def test_every_package_says_what_lives_in_it() -> None:
    packages = tracked("*__init__.py")
    assert len(packages) > 20
    silent = [
        str(init.relative_to(ROOT))
        for init in packages
        if not (ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or "").strip()
    ]
    assert silent == [], "an __init__.py without a docstring saying what lives there"


def test_the_readme_maps_every_top_level_folder() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    mapped = set(re.findall(r"^\| `([^`/]+)/", section, flags=re.MULTILINE))
    folders = {path.relative_to(ROOT).parts[0] for path in tracked("*") if len(path.relative_to(ROOT).parts) > 1}
    folders -= {".ci", ".github"}
    assert folders - mapped == set(), "top-level folders the README's map does not name"
