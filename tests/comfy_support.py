"""Shared set-up of the ComfyUI tests: the pack imported as ComfyUI imports it, and the tiny model set."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from comfy_core_nodes import CORE_NODE_CLASSES
from comfy_fakes import FakeComfy

PACK_ROOT = Path(__file__).resolve().parent.parent
PACK_MODULE = "custom_nodes.show1"
"""The name the pack is imported under (ComfyUI uses the folder path; any name works with relative imports)."""
_TINY: dict[str, Path] = {}


def load_pack() -> ModuleType:
    """The pack root, imported like ComfyUI's ``load_custom_node`` does (``spec_from_file_location`` as a package)."""
    if PACK_MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACK_MODULE, PACK_ROOT / "__init__.py", submodule_search_locations=[str(PACK_ROOT)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK_MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK_MODULE]


def pack_module(name: str) -> ModuleType:
    """A submodule of the pack's ``nodes`` package, e.g. ``pack_module("image_video")``."""
    load_pack()
    return sys.modules[f"{PACK_MODULE}.nodes.{name}"]


def all_classes() -> dict[str, type]:
    """The pack's nodes plus the core-node stand-ins, as ComfyUI's ``NODE_CLASS_MAPPINGS``."""
    return {**CORE_NODE_CLASSES, **load_pack().NODE_CLASS_MAPPINGS}


def tiny_models(factory: pytest.TempPathFactory) -> Path:
    """The tiny random model set (``show1 tiny-models``), written once per test session."""
    if "dir" not in _TINY:
        from show1_core.tiny import write_tiny_models

        _TINY["dir"] = factory.mktemp("show1-tiny-models")
        write_tiny_models(_TINY["dir"])
    return _TINY["dir"]


def comfy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: Path | None) -> FakeComfy:
    """A fake ComfyUI installation under ``tmp_path`` with ``$SHOW1_MODELS_DIR`` set to ``models`` (unset if ``None``)."""
    if models is None:
        monkeypatch.delenv("SHOW1_MODELS_DIR", raising=False)
    else:
        monkeypatch.setenv("SHOW1_MODELS_DIR", str(models))
    fake = FakeComfy(tmp_path / "ComfyUI").install(monkeypatch)
    fake.install_progress_hook()
    return fake
