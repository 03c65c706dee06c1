"""Checks on stage inputs that turn bad values into clear :class:`InputError` messages."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from ..footprint import downscale_factor
from ..loading.registry import ModelRole


def check_positive(**values: int) -> None:
    """Every named value must be a whole number of at least 1."""
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise InputError(f"{name} must be a whole number of at least 1, got {value}")


def nearest_multiple(value: int, multiple: int) -> int:
    """The multiple of ``multiple`` nearest to ``value`` (a tie goes up), at least ``multiple``."""
    return max(multiple, (value + multiple // 2) // multiple * multiple)


def check_spatial_size(unet: nn.Module, height: int, width: int, stage: ModelRole) -> None:
    """Refuse frame sizes the UNet cannot downsample and upsample back exactly."""
    check_positive(height=height, width=width)
    multiple = downscale_factor(unet.config)
    if height % multiple or width % multiple:
        raise InputError(
            f"the {stage.title} model needs height and width that are multiples of {multiple}; got "
            f"{width}x{height}. The nearest valid size is {nearest_multiple(width, multiple)}x"
            f"{nearest_multiple(height, multiple)}."
        )


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether every value of ``tensor`` is finite; a tensor on the ``meta`` device (shapes only, as a memory plan
    runs the stages) has no values and counts as finite."""
    return tensor.is_meta or bool(torch.isfinite(tensor).all())


def check_vae_frame_size(vae: nn.Module, width: int, height: int) -> None:
    """Refuse frame sizes the VAE cannot encode to whole latents."""
    scale = downscale_factor(vae.config)  # pixels per latent along each side (8 for the released VAE)
    if width % scale or height % scale:
        raise InputError(f"the VAE needs frame sizes that are multiples of {scale}, got {width}x{height}")


PIXEL_LIMIT = 2.0
"""Largest magnitude accepted in a pixel video: [-1, 1], with room for the overshoot of a stage's last step."""


def check_video(video: torch.Tensor, name: str, min_frames: int = 1, channels: int = 3, pixels: bool = False) -> None:
    """A video tensor must be ``(batch, channels, frames, height, width)``, finite, with enough frames.

    With ``pixels``, it must also be floating point in [-1, 1] (up to :data:`PIXEL_LIMIT`): 8-bit or
    0..255 frames are refused instead of giving a finite but wrong result.
    """
    if not isinstance(video, torch.Tensor) or video.ndim != 5:
        shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise InputError(f"{name} must be a (batch, channels, frames, height, width) tensor, got {shape}")
    if video.shape[1] != channels:
        raise InputError(f"{name} must have {channels} channels, got {video.shape[1]}")
    if video.shape[2] < min_frames:
        raise InputError(f"{name} needs at least {min_frames} frames, got {video.shape[2]}")
    if pixels and not video.is_floating_point():
        raise InputError(
            f"{name} is a {video.dtype} tensor; stages take floating-point videos in [-1, 1] "
            "(convert 0..255 frames with video.float() / 127.5 - 1)"
        )
    if not all_finite(video):
        raise InputError(f"{name} contains NaN or infinite values")
    if pixels and video.numel() and video.abs().max() > PIXEL_LIMIT:
        raise InputError(
            f"{name} holds values from {video.min().item():.4g} to {video.max().item():.4g}; stages take videos in [-1, 1] "
            "(0..255 frames: divide by 127.5 and subtract 1; 0..1 frames: multiply by 2 and subtract 1)"
        )


def check_image(image: torch.Tensor, name: str) -> None:
    """An image batch must be a floating-point ``(batch, 3, height, width)`` tensor in [-1, 1], finite."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"{name} must be a (batch, channels, height, width) tensor, got {shape}")
    check_video(image.unsqueeze(2), name, pixels=True)
