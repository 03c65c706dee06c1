"""Low-VRAM block streaming: the UNet stays on the CPU and its blocks visit the accelerator one at a time.

diffusers' group offloading hooks every down and up block (and, as one group, the remaining
layers): a block's weights move to the accelerator just before it runs and back after, on a
separate CUDA stream that loads the next block while the current one computes. The accelerator
then holds one or two blocks instead of the whole UNet; the results are the same, the time is
longer by whatever transfer the computation cannot hide. An alternative to whole-model offload
(the ``low-vram`` memory policy), for a UNet that does not fit at all.
"""

from __future__ import annotations

import torch
from diffusers.hooks import apply_group_offloading
from torch import nn


def stream_blocks(model: nn.Module, device: torch.device) -> None:
    """Keep ``model`` on the CPU and move each of its blocks to ``device`` only while it runs (in place)."""
    model.to("cpu")
    apply_group_offloading(
        model,
        onload_device=device,
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=1,
        use_stream=device.type == "cuda",
    )
