"""The single source of the shipped templates: writes each one to ``example_workflows/``.

    python workflow_source/build.py

For every workflow in ``workflow_templates.py`` it writes, in the pack's ``example_workflows/``
(the folder ComfyUI's Templates browser reads, as ``/api/workflow_templates/<pack>/``):

* ``<name>.json``: ComfyUI's UI format (v0.4 graph, laid out for the frontend, with a Note that
  names the models it needs), ``widgets_values`` in input order with ``"fixed"`` after every seed;
* ``<name>.jpg``: its thumbnail, a diagram of what it makes;
* ``api/<name>.json``: the API format, what ``POST /prompt`` takes (Notes are frontend-only).

The tests fail while a committed file differs from what this script builds.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
PACK_ROOT = HERE.parent
OUTPUT = PACK_ROOT / "example_workflows"
PACK_MODULE = "show1_pack_for_workflows"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from workflow_graph import Graph, to_api, to_ui  # noqa: E402
from workflow_templates import TEMPLATES, template_note  # noqa: E402
from workflow_thumbnails import render_thumbnail, thumbnail_key  # noqa: E402


def _import_file(name: str, path: Path, package: bool = False) -> ModuleType:
    """Import a file under ``name`` (a package when ``package``), as ComfyUI imports a pack."""
    if name in sys.modules:
        return sys.modules[name]
    locations = [str(path.parent)] if package else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def node_classes() -> tuple[dict[str, type], dict[str, str]]:
    """Every node class the workflows use (the pack's and ComfyUI core's), and their display names."""
    pack = _import_file(PACK_MODULE, PACK_ROOT / "__init__.py", package=True)
    core = _import_file("show1_workflow_core_nodes", HERE / "core_nodes.py")
    return {**core.CORE_NODES, **pack.NODE_CLASS_MAPPINGS}, {**core.CORE_DISPLAY_NAMES, **pack.NODE_DISPLAY_NAME_MAPPINGS}


def render(data: dict) -> str:
    """JSON text as committed."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def graphs() -> list[Graph]:
    """Every shipped workflow's graph."""
    return [make() for make in TEMPLATES]


def build_all() -> dict[Path, str]:
    """Every workflow file (UI and API) and its text, relative to ``example_workflows/``."""
    classes, names = node_classes()
    files = {}
    for graph in graphs():
        files[Path(f"{graph.name}.json")] = render(to_ui(graph, classes, names, template_note(graph)))
        files[Path("api") / f"{graph.name}.json"] = render(to_api(graph, classes, names))
    return files


def thumbnail_keys(files: dict[Path, str]) -> dict[Path, str]:
    """The key each template's thumbnail must carry (see :func:`workflow_thumbnails.thumbnail_key`)."""
    return {Path(f"{g.name}.jpg"): thumbnail_key(files[Path(f"{g.name}.json")], g.diagram) for g in graphs()}


def main() -> None:
    """Write every template's files into ``example_workflows/``."""
    files = build_all()
    keys = thumbnail_keys(files)
    for relative, text in files.items():
        path = OUTPUT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(PACK_ROOT)}")
    for graph in graphs():
        path = OUTPUT / f"{graph.name}.jpg"
        path.write_bytes(render_thumbnail(f"Show-1: {graph.title}", graph.diagram, keys[path.relative_to(OUTPUT)]))
        print(f"wrote {path.relative_to(PACK_ROOT)}")


if __name__ == "__main__":
    main()
