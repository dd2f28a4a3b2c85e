"""The documentation's relative links and images resolve, its in-page anchors exist, and every PNG
under docs/ is shown or linked from some document (issue 30: 55 of 80 plots were referenced nowhere)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "experiments" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _strip_fences(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def _strip_code(text: str) -> str:
    return re.sub(r"`[^`\n]*`", "", _strip_fences(text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"`", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", _strip_fences(path.read_text()), re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_resolve(doc):
    broken = []
    for target in LINK.findall(_strip_code(doc.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: {broken}"


def test_every_png_under_docs_is_referenced():
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
    referenced = set()
    for md in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in LINK.findall(md.read_text()):
            referenced.add((md.parent / target.partition("#")[0]).resolve())
    unreferenced = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").rglob("*.png")) if p.resolve() not in referenced]
    assert text
    assert not unreferenced, f"{len(unreferenced)} PNGs referenced by no document: {unreferenced}"
