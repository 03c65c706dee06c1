"""Every node has a help page in the pack's WEB_DIRECTORY, where ComfyUI's frontend looks for it.

The frontend (comfyui-frontend-package 1.27, ComfyUI 0.3.64) asks for a custom node's help at
``/extensions/<pack folder>/docs/<node id>/<locale>.md``, then ``/extensions/<pack folder>/docs/<node id>.md``;
ComfyUI serves ``/extensions/<pack folder>/`` from the pack's ``WEB_DIRECTORY``. A node added
without a page fails here; ``tests/test_real_comfyui.py`` fetches the pages from a real server.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from comfy_support import PACK_ROOT, load_pack

NODES = load_pack().NODE_CLASS_MAPPINGS
DISPLAY_NAMES = load_pack().NODE_DISPLAY_NAME_MAPPINGS


def help_folder() -> Path:
    """``<WEB_DIRECTORY>/docs`` as ComfyUI resolves it (relative to the pack folder)."""
    return (PACK_ROOT / load_pack().WEB_DIRECTORY).resolve() / "docs"


def test_the_web_directory_serves_only_help_pages():
    """ComfyUI serves the whole folder and loads every .js in it as a frontend extension: keep it to pages."""
    served = [path for path in (PACK_ROOT / load_pack().WEB_DIRECTORY).rglob("*") if path.is_file()]
    assert served and all(path.parent == help_folder() and path.suffix == ".md" for path in served), served


def test_every_node_has_a_help_page_and_every_page_a_node():
    pages = {path.stem for path in help_folder().glob("*.md")}
    missing = sorted(set(NODES) - pages)
    assert not missing, f"write web/docs/<node id>.md for {missing}"
    assert pages <= set(NODES), f"pages for nodes that do not exist: {sorted(pages - set(NODES))}"


def _names(node: type) -> tuple[list[str], list[str]]:
    spec = node.INPUT_TYPES()
    inputs = [name for section in ("required", "optional") for name in spec.get(section, {})]
    return inputs, list(getattr(node, "RETURN_NAMES", node.RETURN_TYPES))


@pytest.mark.parametrize("node_id", sorted(NODES))
def test_each_help_page_documents_its_node(node_id):
    """The title is the display name; every input and output is named; a diagram shows the wiring."""
    page = (help_folder() / f"{node_id}.md").read_text()
    assert page.splitlines()[0] == f"# {DISPLAY_NAMES[node_id]}"
    inputs, outputs = _names(NODES[node_id])
    undocumented = [name for name in inputs + outputs if f"`{name}`" not in page]
    assert not undocumented, f"{node_id}.md does not mention {undocumented}"
    assert "## Inputs" in page and "## Outputs" in page and "## Time and memory" in page
    assert re.search(r"^```\n.*(─▶|-->)", page, re.MULTILINE | re.DOTALL), "a small diagram of how the node is wired"


@pytest.mark.parametrize("node_id", sorted(NODES))
def test_each_help_page_lists_the_outputs_with_their_declared_types(node_id):
    """The Outputs table has one row per output, in order, with the socket type the node declares."""
    page = (help_folder() / f"{node_id}.md").read_text()
    section = page.split("## Outputs", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", section, re.MULTILINE)
    node = NODES[node_id]
    assert rows == list(zip(_names(node)[1], node.RETURN_TYPES))


def test_help_pages_quote_only_measured_times():
    """A page's times are ones docs/PERFORMANCE.md measured; where there are none it says 'not measured yet'."""
    performance = (PACK_ROOT / "docs" / "PERFORMANCE.md").read_text()
    measured = set(re.findall(r"\b\d+\.\d+ s\b", performance)) | {f"{value} s" for value in re.findall(r"\| (\d+\.\d+) \|", performance)}
    for path in help_folder().glob("*.md"):
        section = path.read_text().split("## Time and memory", 1)[1].split("\n## ", 1)[0]
        quoted = set(re.findall(r"\b\d+\.\d+ s\b", path.read_text()))
        assert quoted <= measured, f"{path.name} quotes {sorted(quoted - measured)}, which docs/PERFORMANCE.md does not"
        assert re.search(r"\b\d+\.\d+ s\b", section) or "not measured yet" in section.lower(), path.name
