"""The documentation stays whole: a page per family, a short results page, links that resolve.

Why: docs rot silently. A new registry family without ``docs/<family>.md``, a BENCHMARKS.md that
grows back into a lab notebook, a link to a renamed file or to a folder outside the repository
(the design once lived in a folder beside the checkout) would each go unnoticed without
these checks.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from waveloom.models.registry import family_names

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MAX_BENCHMARK_LINES = 250
#: Built from parts so this file does not match its own check.
OUTSIDE = "../" + "shared"

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _markdown_files() -> list[Path]:
    """README.md, BENCHMARKS.md and every page under docs/ (lab notes included)."""
    return [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted(DOCS.rglob("*.md"))]


def _prose_lines(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks (links in code are not links)."""
    lines, in_fence = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> hyphens."""
    text = re.sub(r"<!--.*?-->", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = _slug(match[2])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(path: Path) -> list[str]:
    return [m for line in _prose_lines(path) for m in LINK.findall(line)]


@pytest.mark.parametrize("family", family_names())
def test_every_family_has_a_page(family):
    page = DOCS / f"{family}.md"
    assert page.is_file(), f"family {family!r} has no docs/{family}.md (see docs/DESIGN.md)"
    assert f"configs/{family}/" in page.read_text(encoding="utf-8"), (
        f"docs/{family}.md names none of its presets (configs/{family}/...)"
    )


def test_benchmarks_is_a_results_page():
    lines = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_BENCHMARK_LINES, (
        f"BENCHMARKS.md has {len(lines)} lines (at most {MAX_BENCHMARK_LINES}): keep current "
        "numbers there and move the history to a dated file in docs/lab/"
    )


def test_design_and_evaluation_pages_exist():
    for name in ("DESIGN.md", "evaluation.md", "lab/README.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list tracked files")
    files = []
    for name in filter(None, out.decode().split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" not in data[:8192]:  # text, not a checkpoint or an image
            files.append(path)
    return files


def test_nothing_points_outside_the_repository():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _tracked_text_files()
        if OUTSIDE in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert not offenders, f"these files point to {OUTSIDE}/ outside the repository: {offenders}"


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
            continue
        if not dest.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"
