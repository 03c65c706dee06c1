"""show1_core's public surface (the Python face and the host module): what ``__all__`` promises resolves, and the node
pack uses nothing else."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import show1_core

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["show1_core", "show1_core.host", "show1_core.loading", "show1_core.stages", "show1_core.models"]
FACES = ("show1_core", "show1_core.host")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


def _show1_imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "show1_core":
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.split(".")[0] == "show1_core"]
    return found


@pytest.mark.parametrize("path", sorted((REPO / "nodes").glob("*.py")), ids=lambda p: p.name)
def test_nodes_import_only_the_public_surface(path):
    for module, names in _show1_imports(path):
        assert module in FACES, f"{path.name} imports from {module}; import from show1_core or show1_core.host"
        private = sorted(set(names) - set(importlib.import_module(module).__all__))
        assert not private, f"{path.name} imports {private}, which {module} does not export"


def test_the_python_face_and_the_host_module_share_no_name():
    """A name lives in one face: the README's Python surface, or the host module the node pack adds to it."""
    host = importlib.import_module("show1_core.host")
    assert not set(show1_core.__all__) & set(host.__all__)


def test_importing_the_package_loads_nothing_heavy():
    code = "import sys, show1_core; print(any(m.startswith(('torch', 'diffusers')) for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_type_checkers_see_the_same_names_from_the_same_modules_as_the_lazy_imports():
    """The ``if TYPE_CHECKING:`` imports of ``show1_core/__init__.py`` mirror ``_PUBLIC`` exactly (diffusers does the same)."""
    tree = ast.parse((REPO / "show1_core" / "__init__.py").read_text())
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"]
    mirrored = {(node.module, alias.name) for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    lazy = {(module, name) for module, names in show1_core._PUBLIC.items() for name in names}
    assert mirrored == lazy
