"""Rewriting a downloaded checkpoint as safetensors (the released showlab repos ship pickled ``.bin``).

Every component folder is copied; weight files are read with the safe loader and written
as ``.safetensors`` (sharded with an index above ``max_shard_gb``), optionally cast to a
smaller precision. Non-weight files (configs, tokenizers, schedulers) are copied as they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..errors import InputError, MissingFilesError
from .weights import DIFFUSERS_STEM, drop_tied_duplicates, find_weights, read_state_dict

WEIGHT_SUFFIXES = (".bin", ".safetensors")


def _is_weight_file(path: Path) -> bool:
    return path.suffix in WEIGHT_SUFFIXES or path.name.endswith((".bin.index.json", ".safetensors.index.json"))


def _write_safetensors(state: dict[str, torch.Tensor], folder: Path, stem: str, max_shard_bytes: int) -> list[Path]:
    total = sum(t.numel() * t.element_size() for t in state.values())
    if total <= max_shard_bytes:
        path = folder / f"{stem}.safetensors"
        save_file(state, str(path), metadata={"format": "pt"})
        return [path]
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(state):
        tensor_bytes = state[key].numel() * state[key].element_size()
        if shards[-1] and size + tensor_bytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = state[key]
        size += tensor_bytes
    written, weight_map = [], {}
    for i, shard in enumerate(shards, start=1):
        name = f"{stem}-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
        written.append(folder / name)
    index = folder / f"{stem}.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return written + [index]


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
    stem = DIFFUSERS_STEM if weights.name.startswith(DIFFUSERS_STEM) else "model"
    state = drop_tied_duplicates(read_state_dict(weights, dtype=dtype))
    return _write_safetensors(state, target, stem, int(max_shard_gb * 1024**3))


def convert_checkpoint(source: Path | str, target: Path | str, dtype: torch.dtype | None = None, max_shard_gb: float = 5.0) -> list[Path]:
    """Convert a whole checkpoint folder to safetensors; returns every weight file written."""
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise MissingFilesError(f"{source} is not a folder")
    if source.resolve() == target.resolve():
        raise InputError("write the converted checkpoint to a new folder, not over the source")
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for item in sorted(source.iterdir()):
        if item.is_dir() and not item.name.startswith("."):
            written += convert_component(item, target / item.name, dtype, max_shard_gb)
        elif item.is_file():
            shutil.copy2(item, target / item.name)
    if not written:
        raise MissingFilesError(f"no weight files found under {source}")
    return written
