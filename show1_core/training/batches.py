"""Training batches for the keyframe and interpolation models, in the form their samplers feed them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..loading.registry import ModelRole
from ..stages.interpolation import window_conditions
from .clips import Clip, sample_window


@dataclass
class Batch:
    """Clean videos ``(B, 3, F, H, W)`` in [-1, 1], the UNet's extra input channels, and each video's caption."""

    clean: torch.Tensor
    condition: torch.Tensor | None
    captions: list[str]


def make_batch(stage: ModelRole, clips: list[Clip], size: int, frames: int, fps: float | None, generator: torch.Generator) -> Batch:
    """``size`` random clips, ``frames`` frames each.

    For interpolation every video is one window: its first and last frames, blended across
    the window, and the mask of those two frames are the condition, exactly as
    :func:`~show1_core.stages.interpolation.interpolate_frames` builds it at inference.
    """
    picks = torch.randint(0, len(clips), (size,), generator=generator).tolist()
    clean = torch.stack([sample_window(clips[i], frames, fps, generator) for i in picks])
    condition = window_conditions(clean[:, :, [0, -1]], frames) if stage == ModelRole.INTERPOLATION else None
    return Batch(clean=clean, condition=condition, captions=[clips[i].caption for i in picks])
