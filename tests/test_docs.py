"""The documentation stays usable: links that lead somewhere, every page reachable, a README read to the end.

Also the rule docs/ARCHITECTURE.md states: show1_core never imports ComfyUI.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 200
"""The README (the Comfy Registry's page of the pack) stays under 200 lines, so a newcomer reads it to the end."""

LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "latent_preview", "server", "execution", "nodes"}


def _prose(text: str) -> list[str]:
    """The lines of a Markdown page outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: links, code and emphasis marks stripped, lower case, punctuation but _ and - dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*]", "", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(path.read_text()):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(anchors)


def _links(path: Path) -> list[str]:
    prose = "\n".join(re.sub(r"`[^`]*`", "``", line) for line in _prose(path.read_text()))
    return LINK.findall(prose)


def test_the_slugs_are_githubs():
    assert _slug("Where the weights go") == "where-the-weights-go"
    assert _slug("Memory, progress and Cancel") == "memory-progress-and-cancel"
    assert _slug("`show1 generate`") == "show1-generate"
    assert _slug("show1_text_to_video") == "show1_text_to_video"
    assert _slug("1. Prepare clips") == "1-prepare-clips"
    assert _slug("Video: `IMAGE` batches and an `fps` `FLOAT`") == "video-image-batches-and-an-fps-float"
    assert _slug('Where "exactly the original" has limits') == "where-exactly-the-original-has-limits"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page):
    problems = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / unquote(file_part)).resolve() if file_part else page
        if not destination.exists():
            problems.append(f"{target}: no such file")
        elif REPO not in destination.parents and destination != REPO:
            problems.append(f"{target}: outside the repository")
        elif anchor and (destination.suffix != ".md" or anchor not in _anchors(destination)):
            problems.append(f"{target}: no heading #{anchor} in {destination.relative_to(REPO)}")
    assert not problems, f"{page.relative_to(REPO)}:\n" + "\n".join(problems)


def test_every_page_in_docs_is_linked_from_the_readme():
    linked = {(REPO / unquote(target.partition("#")[0])).resolve() for target in _links(README)}
    unlinked = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert not unlinked, f"link these from README.md: {unlinked}"


def test_the_readme_is_read_to_the_end():
    lines = README.read_text().splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_links_every_node_help_page_through_the_comfyui_page():
    """The nodes' help pages are not copied into the docs; docs/COMFYUI.md links each one."""
    help_pages = {path.name for path in (REPO / "web" / "docs").glob("*.md")}
    linked = {Path(target.partition("#")[0]).name for target in _links(REPO / "docs" / "COMFYUI.md") if "web/docs/" in target}
    assert help_pages and help_pages == linked, sorted(help_pages ^ linked)


@pytest.mark.parametrize("path", sorted((REPO / "show1_core").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_show1_core_never_imports_comfyui(path):
    """docs/ARCHITECTURE.md: the library runs without ComfyUI; everything ComfyUI-specific lives in nodes/."""
    imported = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.append(node.module)
    assert not [name for name in imported if name.split(".")[0] in COMFY_MODULES]
