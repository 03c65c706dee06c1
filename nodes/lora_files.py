"""Where the Motion LoRA nodes find LoRA files: ``models/show1/loras`` and ComfyUI's ``models/loras``.

A node's ``lora_name`` is a path relative to one of these folders, as ComfyUI's own LoRA
loader names files. Names come from workflow JSON, so they resolve only inside the folders:
absolute paths, drive letters, ``..`` and links leading out of a folder are refused. Only
files whose header says they are Show-1 motion LoRAs of the node's stage are listed.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath

from show1_core import InputError, MissingFilesError, Show1Error, Stage, read_motion_lora_info

from .model_folders import _folder_paths, model_roots

SHOW1_LORA_FOLDER = "loras"
"""Subfolder of each Show-1 model root holding motion LoRAs (``models/show1/loras``)."""
COMFY_LORA_FOLDER = "loras"
"""ComfyUI's ``folder_paths`` name of ``models/loras``."""


def lora_roots() -> list[Path]:
    """Folders searched for LoRA files, in order: ``<Show-1 model roots>/loras``, then ComfyUI's ``loras`` folders."""
    roots = [root / SHOW1_LORA_FOLDER for root in model_roots()]
    folder_paths = _folder_paths()
    if folder_paths is not None:
        try:
            roots += [Path(p) for p in folder_paths.get_folder_paths(COMFY_LORA_FOLDER)]
        except KeyError:  # a ComfyUI without a loras folder registered
            pass
    return list(dict.fromkeys(roots))


@lru_cache(maxsize=512)
def _stage_of_file(path: str, modified_ns: int, size: int) -> Stage | None:
    try:
        return read_motion_lora_info(path).stage
    except Show1Error:
        return None


def motion_lora_stage(path: Path) -> Stage | None:
    """The stage a file is a motion LoRA for (``None`` for any other file); headers are read once per file version."""
    stat = path.stat()
    return _stage_of_file(str(path), stat.st_mtime_ns, stat.st_size)


def lora_choices(stage: Stage) -> list[str]:
    """Names of the motion LoRA files for ``stage`` in every LoRA folder, sorted, first folder winning a name."""
    names: dict[str, None] = {}
    for root in lora_roots():
        if not root.is_dir():
            continue
        for folder, _, files in os.walk(root, followlinks=True):
            for file in files:
                path = Path(folder) / file
                if path.suffix == ".safetensors" and motion_lora_stage(path) == stage:
                    names.setdefault(path.relative_to(root).as_posix(), None)
    return sorted(names)


def _checked_name(name: str) -> PurePosixPath:
    text = str(name).strip().replace("\\", "/")
    relative = PurePosixPath(text)
    if not text or relative.is_absolute() or PureWindowsPath(text).drive or ".." in relative.parts:
        raise InputError(
            f"LoRA {name!r} must be a file name inside the LoRA folders ({', '.join(map(str, lora_roots()))}); "
            "absolute paths and '..' are not allowed"
        )
    return relative


def resolve_lora(name: str) -> Path:
    """The LoRA file ``name`` inside the first LoRA folder that has it; refuses names and links that lead outside."""
    relative = _checked_name(name)
    for root in lora_roots():
        candidate = root.joinpath(*relative.parts)
        if not candidate.is_file():
            continue
        if not candidate.resolve().is_relative_to(root.resolve()):
            raise InputError(
                f"{candidate} links outside its LoRA folder {root}; put the file itself in the folder, or add its folder to "
                "ComfyUI's extra_model_paths.yaml under 'loras'"
            )
        return candidate
    raise MissingFilesError(
        f"no LoRA file {name!r} in {', '.join(map(str, lora_roots()))}. Put motion LoRAs from `show1 train-motion` in "
        "models/show1/loras or models/loras"
    )
