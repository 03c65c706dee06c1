"""Resumable training state (optimizer, random generator, step) stored without pickle.

``torch.save`` would pickle the optimizer state; here every tensor goes into a safetensors
file and the structure around them (dicts with integer keys, lists, numbers) into JSON in the
same file's metadata, so resuming never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import CorruptCheckpointError
from ..outputs import atomic_write

_STRUCTURE = "structure"


def _flatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().to("cpu").contiguous()
        return {"tensor": key}
    if isinstance(value, dict):
        return {"dict": [[_flatten(k, tensors), _flatten(v, tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [_flatten(v, tensors) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"cannot store a {type(value).__name__} in the training state")


def _unflatten(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    ((kind, content),) = node.items()
    if kind == "tensor":
        return tensors[content]
    if kind == "dict":
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in content}
    if kind == "list":
        return [_unflatten(v, tensors) for v in content]
    return content


def save_state(path: Path, state: dict[str, Any]) -> Path:
    """Write a nested state (tensors, dicts, lists, numbers, strings) to one safetensors file, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _flatten(state, tensors)
    with atomic_write(path) as temporary:
        save_file(tensors, str(temporary), metadata={_STRUCTURE: json.dumps(structure)})
    return path


def load_state(path: Path) -> dict[str, Any]:
    """Read a state written by :func:`save_state`."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            structure = json.loads((handle.metadata() or {})[_STRUCTURE])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        return _unflatten(structure, tensors)
    except Exception as err:  # safetensors, JSON and structure errors all mean the same thing here
        raise CorruptCheckpointError(f"the training state {path} cannot be read ({err}); delete it to start over") from err
