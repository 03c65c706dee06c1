"""Weight files: which one a component folder holds, and reading it safely.

Loading itself is diffusers' and transformers' ``from_pretrained`` (see :mod:`.components`).
This module chooses the file they read (a requested variant first, safetensors before
``.bin``, or the only variant present) and reads a file on its own where the libraries'
errors are too vague to act on: a truncated or random file is *corrupt*; a pickle that
would construct objects other than tensors is *unsafe* and is never run.
``.bin`` files are only ever opened with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import pickle
import pickletools
import zipfile
from pathlib import Path

import torch
from huggingface_hub import load_state_dict_from_file
from safetensors import SafetensorError

from ..errors import CorruptCheckpointError, InputError, MissingFilesError, UnsafeCheckpointError

DIFFUSERS_STEM = "diffusion_pytorch_model"
TRANSFORMERS_STEMS = ("model", "pytorch_model")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
"""The precisions a user can choose, by name."""
FORMAT_WORDS = {"safetensors", "bin", "index", "json"}


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
        for extension in ("safetensors", "bin"):
            for stem in stems:
                names += [f"{stem}{infix}.{extension}.index.json", f"{stem}.{extension}.index{infix}.json", f"{stem}{infix}.{extension}"]
    return list(dict.fromkeys(names))


def find_weights(folder: Path, stems: tuple[str, ...] = (DIFFUSERS_STEM,) + TRANSFORMERS_STEMS, variant: str | None = None) -> Path:
    """The weight file (or shard index) of a component folder: a variant first, safetensors before ``.bin``."""
    folder = Path(folder)
    for name in _candidates(stems, variant):
        if (folder / name).is_file():
            return folder / name
    for stem in stems:  # only a variant is present (e.g. fp16 files downloaded on purpose)
        for pattern in (f"{stem}.*.safetensors", f"{stem}.*.bin", f"{stem}.*safetensors.index*.json", f"{stem}.*bin.index*.json"):
            found = sorted(folder.glob(pattern)) if folder.is_dir() else []
            if found:
                return found[0]
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise MissingFilesError(
        f"no weights found in {folder} (looked for {', '.join(_candidates(stems, None)[:3])} ...; "
        f"the folder holds: {', '.join(present) or 'nothing'}). Download the checkpoint again or point to the "
        "folder that holds its weight files."
    )


def describe_weights(path: Path) -> tuple[bool, str | None]:
    """``(is safetensors, variant)`` of a weight file or shard index, as ``from_pretrained`` takes them."""
    words = path.name.split(".")[1:]
    variants = [w for w in words if w not in FORMAT_WORDS]
    return "safetensors" in words, variants[0] if variants else None


def _is_well_formed_pickle(path: Path) -> bool:
    """Whether ``path`` (a ``torch.save`` zip or a legacy pickle) holds a complete pickle stream, parsed without running it."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                data = archive.read(name)
        else:
            data = path.read_bytes()
        for _ in pickletools.genops(data):
            pass
    except (ValueError, StopIteration, OSError, zipfile.BadZipFile, EOFError):
        return False
    return True


def _read_one(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MissingFilesError(f"weight file {path} is missing; download the checkpoint again")
    try:
        state = load_state_dict_from_file(path, map_location="cpu", weights_only=True, safe=False)
    except pickle.UnpicklingError:  # the safe unpickler refused it: never retried unsafely, nor its advice passed on
        if not _is_well_formed_pickle(path):
            raise CorruptCheckpointError(
                f"{path} is not a readable PyTorch file (not a complete pickle). It is probably damaged: delete it and download it again."
            ) from None
        raise UnsafeCheckpointError(
            f"{path} contains pickled objects other than tensors, so it was not loaded: loading it could run "
            "arbitrary code. Use the official checkpoint (show1 download), or a trusted copy converted to safetensors."
        ) from None
    except (SafetensorError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError) as err:
        raise CorruptCheckpointError(
            f"{path} is not a readable weights file ({err}). It is probably truncated: delete it and download it again."
        ) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CorruptCheckpointError(f"{path} does not hold a state dict of tensors; download it again")
    return state


def shard_map(index_path: Path) -> dict[str, Path]:
    """Tensor name -> shard file of a shard index, every shard checked to sit in the index's folder.

    The one containment rule of every reader of an index: a shard named by an absolute path or
    ``..`` (or a link) that leads out of the folder raises :class:`CorruptCheckpointError`.
    """
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
        names = {key: str(shard) for key, shard in weight_map.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, OSError) as err:
        raise CorruptCheckpointError(f"{index_path} is not a valid shard index ({err}); download it again") from err
    folder = index_path.parent.resolve()
    for shard in sorted(set(names.values())):
        if not (index_path.parent / shard).resolve().is_relative_to(folder):
            raise CorruptCheckpointError(
                f"{index_path} names the shard {shard!r}, outside its folder {index_path.parent}; shards must sit beside "
                "their index, so it was not read. Download the checkpoint again"
            )
    return {key: index_path.parent / shard for key, shard in names.items()}


def _read_sharded(index_path: Path) -> dict[str, torch.Tensor]:
    weight_map = shard_map(index_path)
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_state = _read_one(shard)
        absent = {k for k, v in weight_map.items() if v == shard} - shard_state.keys()
        if absent:
            raise CorruptCheckpointError(
                f"shard {shard.name} lacks {len(absent)} tensors its index lists (e.g. {sorted(absent)[0]}); download it again"
            )
        state.update(shard_state)
    return state


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a weight file, or every shard of an index, into a state dict (on the CPU)."""
    path = Path(path)
    return _read_sharded(path) if path.name.endswith(".json") else _read_one(path)
