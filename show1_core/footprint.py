"""Lower bounds of the memory a stage needs, so absurd sizes are refused before any step.

The bounds count only tensors a stage cannot avoid: its output video on the device and the
activations one UNet call keeps at full resolution (the input convolution's output and every
full-resolution ResNet output, kept for the skip connections, plus the tensor being
computed). The real peak is higher, so a size refused here could never run on that device.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

GIB = 2**30


def downscale_factor(config: Mapping[str, Any]) -> int:
    """Pixels per cell of a UNet's or VAE's deepest level along each side: every level after the first halves the size.

    ``config`` is the model's config (``model.config`` or its ``config.json``); frame sizes must be
    multiples of this for a UNet's down and up paths to line up, and it is the VAE's latent scale.
    """
    return 2 ** (len(config["block_out_channels"]) - 1)


def device_memory_bytes(device: torch.device) -> int | None:
    """Total memory of ``device`` (RAM for the CPU); ``None`` where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "mps" and hasattr(torch.mps, "recommended_max_memory"):
        return torch.mps.recommended_max_memory()
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            return None
    return None


def accelerator_memory_bytes(device: torch.device) -> int | None:
    """Total memory of an accelerator (``None`` for the CPU, or where it cannot be read)."""
    return None if device.type == "cpu" else device_memory_bytes(device)


def unet_activation_bytes(features: int, layers: int, videos: int, frames: int, height: int, width: int, itemsize: int) -> int:
    """Full-resolution activations of one UNet call: ``layers + 2`` tensors of ``features`` channels.

    Args:
        features: channels of the UNet's first level (``block_out_channels[0]``).
        layers: ResNet layers of its first level (``layers_per_block``).
        videos: videos in one call (twice the batch under classifier-free guidance).
    """
    return (layers + 2) * videos * frames * features * height * width * itemsize


def video_bytes(videos: int, frames: int, height: int, width: int, itemsize: int, channels: int = 3) -> int:
    """A ``(videos, channels, frames, height, width)`` tensor."""
    return videos * channels * frames * height * width * itemsize


def gib(count: int) -> str:
    """Bytes as GiB for messages (``12.3 GiB``)."""
    return f"{count / GIB:.1f} GiB"
