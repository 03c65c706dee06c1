"""Where the Motion LoRA nodes find LoRA files: ``models/show1/loras`` and ComfyUI's ``models/loras``.

A node's ``lora_name`` is a path relative to one of these folders, resolved only inside them
(:mod:`.model_files`). Only files whose header says they are Show-1 motion LoRAs of the
node's stage are listed.
"""

from __future__ import annotations

from pathlib import Path

from show1_core import ModelRole, Show1Error, read_motion_lora_info

from .model_files import files_in, per_file_version, resolve_file
from .model_folders import comfy_folders, model_roots

SHOW1_LORA_FOLDER = "loras"
"""Subfolder of each Show-1 model root holding motion LoRAs (``models/show1/loras``)."""
COMFY_LORA_FOLDER = "loras"
"""ComfyUI's ``folder_paths`` name of ``models/loras``."""


def lora_roots() -> list[Path]:
    """Folders searched for LoRA files, in order: ``<Show-1 model roots>/loras``, then ComfyUI's ``loras`` folders."""
    roots = [root / SHOW1_LORA_FOLDER for root in model_roots()] + comfy_folders(COMFY_LORA_FOLDER)
    return list(dict.fromkeys(roots))


def _stage_of_file(path: str) -> ModelRole | None:
    """The stage a file is a motion LoRA for (``None`` for any other file)."""
    try:
        return read_motion_lora_info(path).stage
    except Show1Error:
        return None


motion_lora_stage = per_file_version(_stage_of_file)
"""The stage a file is a motion LoRA for (``None`` for any other file); headers are read once per file version."""


def lora_choices(stage: ModelRole) -> list[str]:
    """Names of the motion LoRA files for ``stage`` in every LoRA folder, sorted, first folder winning a name."""
    return files_in(lora_roots(), lambda path: motion_lora_stage(path) == stage)


def resolve_lora(name: str) -> Path:
    """The LoRA file ``name`` inside the first LoRA folder that has it; refuses names and links that lead outside."""
    return resolve_file(name, lora_roots(), "LoRA", "Put motion LoRAs from `show1 train-motion` in models/show1/loras or models/loras.")
