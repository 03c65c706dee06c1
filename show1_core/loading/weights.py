"""Reading weight files: safetensors (preferred), pickled ``.bin`` (tensors only), and shards.

``.bin`` files are only ever opened with ``torch.load(weights_only=True)``, which refuses
any pickle that would construct objects other than tensors and plain containers.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import CorruptCheckpointError, InputError, MissingFilesError, UnsafeCheckpointError

DIFFUSERS_STEM = "diffusion_pytorch_model"
TRANSFORMERS_STEMS = ("model", "pytorch_model")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def parse_dtype(value: str | torch.dtype) -> torch.dtype:
    """Accept ``fp16``/``bf16``/``fp32`` (or a ``torch.dtype``) and return the dtype."""
    if isinstance(value, torch.dtype):
        return value
    if value not in DTYPES:
        raise InputError(f"unknown precision {value!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[value]


def _candidates(stems: tuple[str, ...], variant: str | None) -> list[str]:
    names = []
    for infix in ([f".{variant}"] if variant else []) + [""]:
        for stem in stems:
            names += [
                f"{stem}{infix}.safetensors.index.json",
                f"{stem}{infix}.safetensors",
            ]
        for stem in stems:
            names += [f"{stem}{infix}.bin.index.json", f"{stem}{infix}.bin"]
    return names


def find_weights(folder: Path, stems: tuple[str, ...] = (DIFFUSERS_STEM,) + TRANSFORMERS_STEMS, variant: str | None = None) -> Path:
    """Pick the weight file of a component folder: a variant first, safetensors before ``.bin``."""
    folder = Path(folder)
    for name in _candidates(stems, variant):
        if (folder / name).is_file():
            return folder / name
    for stem in stems:  # only a variant is present (e.g. fp16 files downloaded on purpose)
        for pattern in (f"{stem}.*.safetensors.index.json", f"{stem}.*.safetensors", f"{stem}.*.bin.index.json", f"{stem}.*.bin"):
            found = sorted(folder.glob(pattern)) if folder.is_dir() else []
            if found:
                return found[0]
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise MissingFilesError(
        f"no weights found in {folder} (looked for {', '.join(_candidates(stems, None)[:4])} ...; "
        f"the folder holds: {', '.join(present) or 'nothing'}). Download the checkpoint again or point to the "
        "folder that holds its weight files."
    )


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CorruptCheckpointError(
            f"{path} is not a readable safetensors file ({err}). It is probably truncated: delete it and download again."
        ) from err


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Weights only load failed" in str(err):
            raise UnsafeCheckpointError(
                f"{path} contains pickled objects other than tensors, so it was not loaded: loading it could run "
                "arbitrary code. Use the official checkpoint, or convert a trusted copy to safetensors elsewhere."
            ) from err
        raise CorruptCheckpointError(f"{path} is not a readable PyTorch file ({err}). Download it again.") from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CorruptCheckpointError(f"{path} is not a readable PyTorch file ({err}). Download it again.") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CorruptCheckpointError(f"{path} does not hold a state dict of tensors")
    return state


def _read_one(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MissingFilesError(f"weight file {path} is missing; download the checkpoint again")
    return _read_safetensors(path) if path.suffix == ".safetensors" else _read_pickle(path)


def _read_sharded(index_path: Path) -> dict[str, torch.Tensor]:
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, OSError) as err:
        raise CorruptCheckpointError(f"{index_path} is not a valid shard index ({err})") from err
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_state = _read_one(index_path.parent / shard)
        expected = {k for k, v in weight_map.items() if v == shard}
        absent = expected - shard_state.keys()
        if absent:
            raise CorruptCheckpointError(
                f"shard {shard} lacks {len(absent)} tensors its index lists (e.g. {sorted(absent)[0]}); download it again"
            )
        state.update(shard_state)
    return state


def read_state_dict(path: Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Read a weight file, or a shard index, into a state dict; cast floating tensors to ``dtype``."""
    path = Path(path)
    state = _read_sharded(path) if path.name.endswith(".index.json") else _read_one(path)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    return state


def drop_tied_duplicates(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep one name per shared tensor (safetensors stores no aliases; loading re-ties them)."""
    seen: dict[tuple[int, tuple[int, ...], torch.dtype], str] = {}
    kept = {}
    for key in sorted(state):
        tensor = state[key]
        identity = (tensor.untyped_storage().data_ptr() + tensor.storage_offset() * tensor.element_size(), tuple(tensor.shape), tensor.dtype)
        if identity in seen:
            continue
        seen[identity] = key
        kept[key] = tensor
    return kept
