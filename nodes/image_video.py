"""Converting between ComfyUI's frame batches and show1_core's videos.

ComfyUI passes a video between nodes as an ``IMAGE`` batch ``[frames, height, width, 3]``
in 0..1 (one frame per batch entry) and latent videos as ``LATENT`` dicts whose
``samples`` are 5-D ``[batch, channels, frames, height, width]``. show1_core works on
``[batch, 3, frames, height, width]`` videos in [-1, 1].

Hand-offs between Show-1 nodes are exact. The pixel stages' outputs are not clamped (their
samplers threshold to +-1.5 and the original hands those values on unchanged), and the
IMAGE a Show-1 stage outputs carries the stage's own video: the next Show-1 node uses it
as long as the IMAGE it receives still holds exactly the frames made from that video (the
frames are compared: ComfyUI runs nodes under ``torch.inference_mode``, whose tensors keep
no in-place version counter). Any other IMAGE, from another node or edited in place,
goes through ``2 * image - 1``, which is exact for float32 values of float32 IMAGE data
but not for every fp16/bf16 value (``(x + 1) / 2`` rounds values near zero). Nodes that
save or show frames clamp to 0..1.
"""

from __future__ import annotations

import torch

from show1_core import InputError

from .comfy_bridge import to_intermediate
from .core_vae import as_video_latent

CARRIED = "_show1_video"
"""Attribute of a Show-1 IMAGE output: the video it was made from."""


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


def _frames_of(video: torch.Tensor) -> torch.Tensor:
    """``[B, 3, T, H, W]`` in [-1, 1] -> ``[B*T, H, W, 3]`` as ``(video + 1) / 2``, unclamped, in float32."""
    batch, channels, frames, height, width = video.shape
    return (video.float() * 0.5 + 0.5).permute(0, 2, 3, 4, 1).reshape(batch * frames, height, width, channels)


def carried_video(images: torch.Tensor) -> torch.Tensor | None:
    """The exact video a Show-1 stage attached to this IMAGE, if the IMAGE still holds the frames made from it."""
    video = getattr(images, CARRIED, None)
    if video is None:
        return None
    made = to_intermediate(_frames_of(video))
    unchanged = made.shape == images.shape and torch.equal(made.to(images.device, images.dtype), images)
    return video if unchanged else None


def image_to_video(images: object, input_name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``IMAGE [T, H, W, 3]`` in 0..1 -> one video ``[1, 3, T, H, W]`` in [-1, 1], in ``dtype`` (a stage's precision)."""
    frames = check_images(images, input_name)
    exact = carried_video(frames)
    if exact is not None and exact.shape[0] == 1:
        return exact.to(dtype)
    return (frames.float() * 2 - 1).permute(3, 0, 1, 2).unsqueeze(0).to(dtype)


def video_to_image(video: torch.Tensor, clamp: bool = False) -> torch.Tensor:
    """``[B, 3, T, H, W]`` in [-1, 1] -> ``IMAGE [B*T, H, W, 3]`` on ComfyUI's intermediate device.

    ``(video + 1) / 2``, unclamped for the pixel stages, which also attach ``video`` for the
    next Show-1 node (see the module docstring); clamped to 0..1 with ``clamp`` (the final,
    decoded stage-4 frames).
    """
    images = _frames_of(video)
    images = to_intermediate(images.clamp(0, 1) if clamp else images)
    if not clamp:
        setattr(images, CARRIED, video)
    return images


def latent_samples(latent: object, input_name: str) -> torch.Tensor:
    """The 5-D ``samples`` of a video ``LATENT`` (4-D frame latents as one video), or a clear error."""
    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise InputError(f"the {input_name!r} input needs a LATENT (a dict with 'samples'), got {type(latent).__name__}")
    samples = latent["samples"]
    if samples.ndim not in (4, 5):
        raise InputError(
            f"the {input_name!r} latent must be [batch, channels, frames, height, width] or [frames, channels, height, "
            f"width], got {tuple(samples.shape)}"
        )
    return as_video_latent(samples)


def to_latent(samples: torch.Tensor, like: dict | None = None) -> dict:
    """A ``LATENT`` dict with ``samples`` on the intermediate device, keeping the other keys of ``like``."""
    latent = dict(like or {})
    latent["samples"] = to_intermediate(samples)
    return latent
