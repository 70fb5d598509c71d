"""Issue 14: every image docs/web.md and README.md show exists, is a PNG, and the walkthrough stays small."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
BUDGET_BYTES = 3 * 1024 * 1024


def images(document: Path) -> list[Path]:
    return [(document.parent / target).resolve() for target in IMAGE.findall(document.read_text(encoding="utf-8"))]


def test_every_image_the_web_docs_show_exists_and_is_a_png() -> None:
    shown = images(ROOT / "docs" / "web.md") + images(ROOT / "README.md")
    assert len(shown) >= 17, shown
    missing = [str(path.relative_to(ROOT)) for path in shown if not path.is_file()]
    assert missing == []
    not_png = [str(path.relative_to(ROOT)) for path in shown if path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"]
    assert not_png == []


def test_the_walkthrough_images_are_all_shown_and_small() -> None:
    shown = set(images(ROOT / "docs" / "web.md"))
    on_disk = set((ROOT / "docs" / "web").glob("*.png"))
    assert on_disk - shown == set(), "screenshots no page shows"
    assert sum(path.stat().st_size for path in on_disk) < BUDGET_BYTES
