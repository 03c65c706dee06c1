"""Converting between ComfyUI's frame batches and show1_core's videos.

ComfyUI passes a video between nodes as an ``IMAGE`` batch ``[frames, height, width, 3]``
in 0..1 (one frame per batch entry) and latent videos as ``LATENT`` dicts whose
``samples`` are 5-D ``[batch, channels, frames, height, width]``. show1_core works on
``[batch, 3, frames, height, width]`` videos in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from show1_core.errors import InputError

from .comfy_bridge import to_intermediate


def check_images(images: object, input_name: str) -> torch.Tensor:
    """An ``IMAGE`` batch ``[frames, height, width, 3]`` with at least one frame, or a clear error."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"the {input_name!r} input needs an IMAGE frame batch, got {type(images).__name__}")
    if images.ndim != 4:
        raise InputError(
            f"the {input_name!r} input needs an IMAGE batch [frames, height, width, channels], got shape {tuple(images.shape)}"
        )
    frames, height, width, channels = images.shape
    if channels == 4:
        raise InputError(
            f"the {input_name!r} frames have 4 channels (RGBA); Show-1 takes RGB. Drop the alpha channel first "
            "(for example with the core 'Split Image with Alpha' node)"
        )
    if channels != 3:
        raise InputError(f"the {input_name!r} frames must have 3 (RGB) channels, got {channels}")
    if frames == 0 or height == 0 or width == 0:
        raise InputError(f"the {input_name!r} input is empty (shape {tuple(images.shape)})")
    if not torch.isfinite(images).all():
        raise InputError(f"the {input_name!r} frames contain NaN or infinite values")
    return images


def image_to_video(images: object, input_name: str) -> torch.Tensor:
    """``IMAGE [T, H, W, 3]`` in 0..1 -> one video ``[1, 3, T, H, W]`` in [-1, 1] (float32)."""
    frames = check_images(images, input_name).float()
    return (frames * 2 - 1).permute(3, 0, 1, 2).unsqueeze(0)


def video_to_image(video: torch.Tensor) -> torch.Tensor:
    """``[B, 3, T, H, W]`` in [-1, 1] -> ``IMAGE [B*T, H, W, 3]`` in 0..1 on ComfyUI's intermediate device.

    The values are ``video * 0.5 + 0.5`` clamped, the same numbers the original quantises
    to 8 bits, so :func:`image_to_uint8` of the result equals the original's 8-bit frames.
    """
    batch, channels, frames, height, width = video.shape
    images = (video.float() * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1).reshape(batch * frames, height, width, channels)
    return to_intermediate(images)


def image_to_uint8(images: object, input_name: str) -> np.ndarray:
    """``IMAGE [T, H, W, 3]`` -> ``[1, T, H, W, 3]`` uint8, truncating as the original's stage-4 input does."""
    frames = check_images(images, input_name).float()
    return (frames.cpu().numpy() * 255).astype(np.uint8)[None]


def latent_samples(latent: object, input_name: str) -> torch.Tensor:
    """The 5-D ``samples`` of a video ``LATENT``, or a clear error for image latents and other values."""
    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise InputError(f"the {input_name!r} input needs a LATENT (a dict with 'samples'), got {type(latent).__name__}")
    samples = latent["samples"]
    if samples.ndim == 4:
        raise InputError(
            f"the {input_name!r} latent is an image latent {tuple(samples.shape)}; Show-1 needs a video latent "
            "[batch, channels, frames, height, width] from Show-1 VAE Encode"
        )
    if samples.ndim != 5:
        raise InputError(
            f"the {input_name!r} latent must be [batch, channels, frames, height, width], got {tuple(samples.shape)}"
        )
    return samples


def to_latent(samples: torch.Tensor, like: dict | None = None) -> dict:
    """A ``LATENT`` dict with ``samples`` on the intermediate device, keeping the other keys of ``like``."""
    latent = dict(like or {})
    latent["samples"] = to_intermediate(samples)
    return latent
