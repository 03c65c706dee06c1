"""Rewriting a downloaded checkpoint as safetensors (the released showlab repos ship pickled ``.bin``).

The result goes to a new folder, renamed into place when complete. Every component folder is copied;
weight files are read with the safe loader and written as
``.safetensors`` by ``huggingface_hub.save_torch_state_dict`` (sharded with an index above
``max_shard_gb``, tied tensors stored once), optionally cast to a smaller precision.
Non-weight files (configs, tokenizers, schedulers) are copied as they are.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from huggingface_hub import save_torch_state_dict

from ..errors import InputError, MissingFilesError
from ..outputs import remove_leftovers, temporary_name
from .weights import DIFFUSERS_STEM, find_weights, read_state_dict

WEIGHT_SUFFIXES = (".bin", ".safetensors")


def _is_weight_file(path: Path) -> bool:
    return path.suffix in WEIGHT_SUFFIXES or path.name.endswith((".bin.index.json", ".safetensors.index.json"))


def convert_component(source: Path, target: Path, dtype: torch.dtype | None = None, max_shard_gb: float = 5.0) -> list[Path]:
    """Convert one component folder (``unet/``, ``text_encoder/`` ...); returns the weight files written."""
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and not _is_weight_file(item):
            shutil.copy2(item, target / item.name)
    try:
        weights = find_weights(source)
    except MissingFilesError:
        return []
    state = read_state_dict(weights)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    stem = DIFFUSERS_STEM if weights.name.startswith(DIFFUSERS_STEM) else "model"
    before = set(target.iterdir())
    save_torch_state_dict(state, target, filename_pattern=stem + "{suffix}.safetensors", max_shard_size=int(max_shard_gb * 1024**3))
    return sorted(set(target.iterdir()) - before)


def convert_checkpoint(source: Path | str, target: Path | str, dtype: torch.dtype | None = None, max_shard_gb: float = 5.0) -> list[Path]:
    """Convert a whole checkpoint folder to safetensors into a new folder; returns every weight file written.

    ``target`` must not exist (or be an empty folder): an existing checkpoint is never rewritten.
    The conversion is written under a temporary name beside ``target`` and renamed into place
    only when it is complete, so a failed or interrupted run leaves no half-converted folder, and
    the folder a killed run left behind is removed by the next conversion to the same ``target``.
    """
    source, target = Path(source), Path(target).absolute()
    if not source.is_dir():
        raise MissingFilesError(f"{source} is not a folder")
    if source.resolve() == target.resolve():
        raise InputError("write the converted checkpoint to a new folder, not over the source")
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise InputError(f"{target} already exists and is not an empty folder; convert into a new folder (nothing was written)")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)  # the half-written folders of conversions that were killed
    partial = temporary_name(target)
    partial.mkdir()
    try:
        written: list[Path] = []
        for item in sorted(source.iterdir()):
            if item.is_dir() and not item.name.startswith("."):
                written += convert_component(item, partial / item.name, dtype, max_shard_gb)
            elif item.is_file():
                shutil.copy2(item, partial / item.name)
        if not written:
            raise MissingFilesError(f"no weight files found under {source}")
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return [target / path.relative_to(partial) for path in written]
