"""Streaming from the CPU: a model stays there and its parts visit the accelerator one at a time.

diffusers' group offloading hooks a model's parts: a part's weights move to the accelerator just
before it runs and back after, so the accelerator holds one part instead of the whole model; the
results are the same, the time is longer by whatever transfer the computation cannot hide.

- :func:`stream_blocks` (the UNets' ``stream_blocks`` speed option, for a UNet that does not fit
  at all; an alternative to whole-model offload, the ``low-vram`` memory policy): every down and
  up block (and, as one group, the remaining layers), on a separate CUDA stream that loads the
  next block while the current one computes. The hooks stay for the model's lifetime.
- :func:`streamed_layers` (the T5 encoder under the memory policy): every layer that holds
  weights on its own, the least accelerator memory, for one block of code; the model is plain
  again, on the CPU, afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from diffusers.hooks import HookRegistry, apply_group_offloading
from diffusers.hooks.group_offloading import _GROUP_OFFLOADING, _LAYER_EXECUTION_TRACKER, _LAZY_PREFETCH_GROUP_OFFLOADING
from torch import nn

CPU = torch.device("cpu")
_OFFLOADING_HOOKS = (_GROUP_OFFLOADING, _LAYER_EXECUTION_TRACKER, _LAZY_PREFETCH_GROUP_OFFLOADING)
"""The names of the hooks ``apply_group_offloading`` may register (those diffusers' own removal takes off)."""


def _offload_parts(model: nn.Module, device: torch.device, offload_type: str, **options: object) -> None:
    model.to(CPU)
    apply_group_offloading(model, onload_device=device, offload_device=CPU, offload_type=offload_type, **options)


def stream_blocks(model: nn.Module, device: torch.device) -> None:
    """Keep ``model`` on the CPU and move each of its blocks to ``device`` only while it runs (in place)."""
    _offload_parts(model, device, "block_level", num_blocks_per_group=1, use_stream=device.type == "cuda")


def _remove_offloading(model: nn.Module) -> None:
    """Take group offloading's hooks (only those) off ``model`` and its submodules, and put it on the CPU."""
    registry = HookRegistry.check_if_exists_or_initialize(model)
    for name in _OFFLOADING_HOOKS:
        registry.remove_hook(name, recurse=True)
    model.to(CPU)


@contextmanager
def streamed_layers(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Within the block, keep ``model`` on the CPU and move each layer to ``device`` only while it runs.

    Afterwards, also after an error, the offloading hooks are gone (any others stay) and the model is on the CPU.
    """
    _offload_parts(model, device, "leaf_level")
    try:
        yield model
    finally:
        _remove_offloading(model)
