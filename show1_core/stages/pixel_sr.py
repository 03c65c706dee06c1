"""Stage 3: pixel super-resolution in overlapping windows that carry an upscaled frame.

Windows of ``window`` frames start every ``stride`` frames. Each window's low-resolution
frames are upscaled bilinearly and noised; the window's first frame is then replaced by
an already-upscaled frame (the anchor for the first window, the previous window's output
after that), which carries detail and identity from window to window.

The original only runs windows that fit entirely (starts 0, 7, 14, 21 for 29 frames) and
leaves frames past the last one black. Here a final window aligned to the end covers any
remaining frames, writing only frames no earlier window produced, so every frame the
original defines comes out identical.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..loading.registry import ModelRole
from ..loading.stage_model import StageModel
from ..settings import PixelSRSettings
from ..validation.stage_inputs import check_pixel_sr_inputs
from ..validation.tensors import check_positive
from .first_frame import noised_condition, upscale_bilinear
from .progress import StageSteps, StepCallback
from .sampling import (
    PromptEmbeds,
    batch_to_frames,
    embeddings_for,
    frames_to_batch,
    guided_denoise,
    noise_like,
    scheduler_for,
    seeded_generator,
)


def window_starts(num_frames: int, window: int, stride: int) -> list[tuple[int, int]]:
    """``(start, write_from)`` of every window; together they cover all ``num_frames`` frames.

    A window writes its output from ``write_from`` on: from its start for the original's
    windows (replacing the frame it carried in, as the original does), and only the
    frames no window covered yet for the extra window aligned to the end.
    """
    check_positive(window=window, stride=stride)
    if stride >= window:
        raise InputError(f"stride ({stride}) must be smaller than the window ({window}) so neighbouring windows share a frame")
    if num_frames <= window:
        return [(0, 0)]
    starts = [(s, s) for s in range(0, num_frames - window + 1, stride)]
    covered = starts[-1][0] + window
    if covered < num_frames:
        starts.append((num_frames - window, covered))
    return starts


def super_resolve_pixels(
    model: StageModel,
    video: torch.Tensor,
    embeds: PromptEmbeds,
    first_frame: torch.Tensor,
    settings: PixelSRSettings = PixelSRSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
    progress: StageSteps | None = None,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Upscale ``video`` ``(B, 3, F, h, w)`` by ``settings.scale`` to ``(B, 3, F, h*scale, w*scale)``.

    Args:
        first_frame: the upscaled frame 0, ``(B, 3, h*scale, w*scale)`` (IF-II-L output, or a
            bilinear upscale where IF-II-L is not available).

    The inputs are checked first (:func:`~show1_core.validation.stage_inputs.check_pixel_sr_inputs`)
    unless ``checked``.
    """
    if not checked:
        check_pixel_sr_inputs(model, video, settings, seed, first_frame)
    unet = model.unet
    batch, _, num_frames, low_h, low_w = video.shape
    height, width = low_h * settings.scale, low_w * settings.scale
    embeds = embeddings_for(unet, embeds, ModelRole.PIXEL_SR.title, batch)
    windows = window_starts(num_frames, settings.window, settings.stride)
    device, dtype = unet.device, unet.dtype
    video = video.to(device, dtype)
    labels = torch.full((batch,), settings.noise_level, device=device, dtype=torch.long)

    out = torch.zeros(batch, 3, num_frames, height, width, device=device, dtype=dtype)
    for part, (start, write_from) in enumerate(windows):
        frames = video[:, :, start : start + settings.window]
        length = frames.shape[2]
        anchor = first_frame.to(device, dtype) if start == 0 else out[:, :, start]
        scheduler = scheduler_for(model, settings.steps, device)
        loop = len(scheduler.timesteps)
        stage = progress or StageSteps(ModelRole.PIXEL_SR.value, 0, len(windows) * loop)
        generator = seeded_generator(seed)
        sample = noise_like((batch, 3, length, height, width), generator, device, dtype) * scheduler.init_noise_sigma
        upscaled = batch_to_frames(upscale_bilinear(frames_to_batch(frames), height, width), batch)
        condition = noised_condition(model, upscaled, noise_like(upscaled.shape, generator, device, dtype), settings.noise_level)
        condition[:, :, 0] = anchor
        result = guided_denoise(
            unet,
            scheduler,
            sample,
            scheduler.timesteps,
            embeds,
            settings.guidance,
            progress=StageSteps(stage.stage, stage.before + part * loop, stage.total),
            condition=condition,
            class_labels=labels,
            generator=generator,
            callback=callback,
            split_guidance=model.speed.split_guidance,
            cache=model.speed.cache.of(model.stage.value),
        )
        out[:, :, write_from : start + length] = result[:, :, write_from - start :]
    return out
