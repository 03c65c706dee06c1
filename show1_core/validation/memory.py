"""A lower bound of each stage's memory, checked against the device's before anything runs.

Each stage's largest UNet call and output video, sized from the settings and the models'
limits, go through :mod:`show1_core.footprint`'s estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from ..footprint import device_memory_bytes, gib, unet_activation_bytes, video_bytes
from ..loading.registry import ModelRole
from ..settings import CascadeSettings
from ..stages.interpolation import interpolated_length
from .models import ModelLimits
from .ranges import Problem


@dataclass(frozen=True)
class _Work:
    """The largest UNet call of a stage and its output video, in frames and pixels."""

    frames: int
    height: int
    width: int
    output_frames: int
    output_height: int
    output_width: int
    guided: bool
    advice: str


def _work(settings: CascadeSettings, limits: Mapping[ModelRole, ModelLimits], stage: ModelRole, frames: int) -> _Work:
    kf, sr, lsr = settings.keyframes, settings.pixel_sr, settings.latent_sr
    big_h, big_w = kf.height * sr.scale, kf.width * sr.scale
    if stage == ModelRole.KEYFRAMES:
        return _Work(kf.num_frames, kf.height, kf.width, kf.num_frames, kf.height, kf.width, kf.guidance > 1, "fewer keyframes")
    if stage == ModelRole.INTERPOLATION:
        it = settings.interpolation
        return _Work(it.frames_between + 2, kf.height, kf.width, frames, kf.height, kf.width, it.guidance > 1, "fewer frames")
    if stage == ModelRole.FIRST_FRAME:
        return _Work(1, big_h, big_w, 1, big_h, big_w, settings.first_frame.guidance > 1, "smaller keyframes")
    if stage == ModelRole.PIXEL_SR:
        window = min(sr.window, frames)
        return _Work(window, big_h, big_w, frames, big_h, big_w, sr.guidance > 1, "a smaller pixel_sr.window or fewer frames")
    scale = limits[stage].vae_scale or 1
    window = min(lsr.frame_window or frames, frames)
    return _Work(
        window,
        -(-lsr.height // scale),
        -(-lsr.width // scale),
        frames,
        lsr.height,
        lsr.width,
        lsr.guidance > 1,
        "latent_sr.frame_window (frames per UNet call) or fewer frames",
    )


def _frames(settings: CascadeSettings, limits: Mapping[ModelRole, ModelLimits]) -> int:
    """Frames of the video stages 2-4 work on."""
    kf = settings.keyframes
    return interpolated_length(kf.num_frames, settings.interpolation.frames_between) if ModelRole.INTERPOLATION in limits else kf.num_frames


def stage_memory_bytes(
    settings: CascadeSettings,
    limits: Mapping[ModelRole, ModelLimits],
    stage: ModelRole,
    dtype: torch.dtype,
    batch: int = 1,
    split_guidance: bool = False,
) -> int:
    """A lower bound of the memory ``stage`` needs on its device: its output video and one UNet call's
    full-resolution activations (:mod:`show1_core.footprint`); with ``split_guidance`` a guided call
    holds one video instead of two."""
    work = _work(settings, limits, stage, _frames(settings, limits))
    itemsize = torch.empty((), dtype=dtype).element_size()
    videos = batch * (2 if work.guided and not split_guidance else 1)
    model = limits[stage]
    activations = unet_activation_bytes(model.features, model.layers, videos, work.frames, work.height, work.width, itemsize)
    return activations + video_bytes(batch, work.output_frames, work.output_height, work.output_width, itemsize)


def memory_problems(
    settings: CascadeSettings,
    limits: Mapping[ModelRole, ModelLimits],
    device: torch.device,
    dtype: torch.dtype,
    batch: int = 1,
    split_guidance: bool = False,
) -> list[Problem]:
    """Stages whose memory lower bound exceeds what ``device`` has (nothing when that cannot be read)."""
    available = device_memory_bytes(device)
    if available is None:
        return []
    problems = []
    for stage in limits:
        need = stage_memory_bytes(settings, limits, stage, dtype, batch, split_guidance)
        if need > available:
            work = _work(settings, limits, stage, _frames(settings, limits))
            problems.append(
                Problem(
                    None,
                    f"the {stage.title} needs at least {gib(need)} at {work.output_width}x{work.output_height} with "
                    f"{work.output_frames} frames (its output and the activations of one UNet call of {work.frames} frames), "
                    f"more than the {gib(available)} the {device} device has; use a smaller size, {work.advice}",
                )
            )
    return problems
