"""Single model files picked by name from a list of folders (LoRAs, single-file text encoders).

A name is a path relative to one of the folders, as ComfyUI's own loaders name files. Names
come from workflow JSON, so they resolve only inside the folders: names are checked by
:mod:`.model_names`, and links leading out of a folder are refused.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Callable, TypeVar

from show1_core import InputError, MissingFilesError

from .model_names import RefusedName, relative_name

T = TypeVar("T")


def per_file_version(read: Callable[[str], T]) -> Callable[[Path], T]:
    """``read`` remembered per file version (path, modification time, size): each version of a file is read once."""
    remembered = lru_cache(maxsize=512)(lambda path, modified_ns, size: read(path))

    def read_once(path: Path) -> T:
        stat = path.stat()
        return remembered(str(path), stat.st_mtime_ns, stat.st_size)

    return read_once


def files_in(roots: list[Path], accept: Callable[[Path], bool]) -> list[str]:
    """Names of the ``.safetensors`` files under ``roots`` that ``accept`` takes, sorted, the first folder winning a name."""
    names: dict[str, None] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for folder, _, files in os.walk(root, followlinks=True):
            for file in files:
                path = Path(folder) / file
                if path.suffix == ".safetensors" and accept(path):
                    names.setdefault(path.relative_to(root).as_posix(), None)
    return sorted(names)


def _checked_name(name: str, roots: list[Path], what: str) -> PurePosixPath:
    try:
        return relative_name(name, "file")
    except RefusedName as why:
        raise InputError(f"{what} {name!r} must be a file name inside {', '.join(map(str, roots))}; {why}") from None


def resolve_file(name: str, roots: list[Path], what: str, hint: str) -> Path:
    """The file ``name`` inside the first of ``roots`` that has it; refuses names and links that lead outside.

    ``what`` names the kind of file in messages ("LoRA"); ``hint`` says where such files come from.
    """
    relative = _checked_name(name, roots, what)
    for root in roots:
        candidate = root.joinpath(*relative.parts)
        if not candidate.is_file():
            continue
        if not candidate.resolve().is_relative_to(root.resolve()):
            raise InputError(
                f"{candidate} links outside its {what} folder {root}; put the file itself in the folder, or add its "
                "folder to ComfyUI's extra_model_paths.yaml"
            )
        return candidate
    raise MissingFilesError(f"no {what} file {name!r} in {', '.join(map(str, roots))}. {hint}")
