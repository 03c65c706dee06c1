"""Gradient (activation) checkpointing for a Show-1 UNet during training, without changing the model.

Each top-level block (down, mid, up) runs under ``torch.utils.checkpoint``: its activations
are dropped after the forward pass and recomputed during the backward pass, so only block
inputs stay in memory. The blocks are wrapped by overriding ``forward`` on the instances for
the duration of a ``with`` block; module names, weights and state dicts stay as they are.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Callable, Iterator

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def _checkpointed(forward: Callable, *args, **kwargs):
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    return checkpoint(forward, *args, use_reentrant=False, **kwargs)


def _blocks(unet: nn.Module) -> list[nn.Module]:
    blocks = list(unet.down_blocks) + list(unet.up_blocks)
    if unet.mid_block is not None:
        blocks.append(unet.mid_block)
    return blocks


@contextmanager
def activation_checkpointing(unet: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Recompute each UNet block's activations in the backward pass while the block is active."""
    blocks = _blocks(unet) if enabled else []
    for block in blocks:
        block.forward = partial(_checkpointed, block.forward)
    try:
        yield
    finally:
        for block in blocks:
            del block.forward
