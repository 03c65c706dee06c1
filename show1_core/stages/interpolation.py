"""Stage 2: temporal interpolation between neighbouring keyframes.

Each pair of neighbouring frames gets a window of ``frames_between + 2`` frames whose
condition is the pair blended linearly across the window plus a mask marking its two
known ends. Every window starts from the same noise and none depends on another, so
they run as one batch (or in chunks of ``window_batch``, halved after an out-of-memory
error): the same computation as one at a time, up to float rounding of batched kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..loading.registry import ModelRole
from ..loading.stage_model import StageModel
from ..memory import retry_smaller_on_oom
from ..settings import InterpolationSettings
from ..validation.stage_inputs import check_interpolation_inputs
from .progress import StageSteps, StepCallback
from .sampling import PromptEmbeds, embeddings_for, guided_denoise, noise_like, scheduler_for, seeded_generator


def interpolated_length(num_frames: int, frames_between: int) -> int:
    """Frame count after interpolation: 8 keyframes with 3 between each pair give 29."""
    return num_frames + (num_frames - 1) * frames_between


def interpolated_fps(fps: float, frames_between: int) -> float:
    """Frame rate that keeps the clip's duration: 2 fps keyframes with 3 frames between become 8 fps
    (the rate the original writes its 29-frame videos at; the paper rounds it to 7.5)."""
    return fps * (frames_between + 1)


def window_conditions(frames: torch.Tensor, window: int) -> torch.Tensor:
    """Conditions of every window, window-major: ``((F-1)*B, 4, window, H, W)``.

    Channels 0-2 blend the pair's first and last frame linearly over the window
    (trilinear, ``align_corners=True``); channel 3 is 1 on the two known frames.
    """
    batch, _, num_frames, height, width = frames.shape
    conditions = []
    for i in range(num_frames - 1):
        pair = frames[:, :, i : i + 2]
        blend = F.interpolate(pair, size=(window, height, width), mode="trilinear", align_corners=True)
        mask = torch.zeros(batch, 1, window, height, width, device=frames.device, dtype=frames.dtype)
        mask[:, :, [0, -1]] = 1
        conditions.append(torch.cat([blend, mask], dim=1))
    return torch.cat(conditions)


def interpolate_frames(
    model: StageModel,
    frames: torch.Tensor,
    embeds: PromptEmbeds,
    settings: InterpolationSettings = InterpolationSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
    progress: StageSteps | None = None,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Insert ``frames_between`` frames between each neighbouring pair of ``frames``.

    Args:
        frames: ``(batch, 3, frames, height, width)`` in [-1, 1], at least 2 frames.
    Returns:
        ``(batch, 3, frames + (frames - 1) * frames_between, height, width)``; where two
        windows share a frame, the later window's version is kept (as the original does).

    The inputs are checked first (:func:`~show1_core.validation.stage_inputs.check_interpolation_inputs`)
    unless ``checked``.
    """
    if not checked:
        check_interpolation_inputs(model, frames, settings, seed)
    unet = model.unet
    batch, _, num_frames, height, width = frames.shape
    embeds = embeddings_for(unet, embeds, ModelRole.INTERPOLATION.title, batch)
    device, dtype = unet.device, unet.dtype
    window = settings.frames_between + 2
    windows = num_frames - 1
    chunk = settings.window_batch or windows

    conditions = window_conditions(frames.to(device, dtype), window)
    noise = noise_like((batch, 3, window, height, width), seeded_generator(seed), device, dtype)

    def denoise_in_chunks(chunk: int) -> list[torch.Tensor]:
        results = []
        parts = -(-windows // chunk)
        for part, first in enumerate(range(0, windows, chunk)):
            count = min(chunk, windows - first)
            scheduler = scheduler_for(model, settings.steps, device)
            loop = len(scheduler.timesteps)
            stage = progress or StageSteps(ModelRole.INTERPOLATION.value, 0, parts * loop)
            results.append(
                guided_denoise(
                    unet,
                    scheduler,
                    noise.repeat(count, 1, 1, 1, 1),
                    scheduler.timesteps,
                    embeds.repeat(count),
                    settings.guidance,
                    progress=StageSteps(stage.stage, stage.before + part * loop, stage.total),
                    condition=conditions[first * batch : (first + count) * batch],
                    generator=seeded_generator(seed),
                    callback=callback,
                    split_guidance=model.speed.split_guidance,
                    cache=model.speed.cache.of(model.stage.value),
                )
            )
        return results

    results = retry_smaller_on_oom(denoise_in_chunks, chunk, device, "interpolation")
    denoised = torch.cat(results).reshape(windows, batch, 3, window, height, width)

    out = torch.zeros(batch, 3, interpolated_length(num_frames, settings.frames_between), height, width, device=device, dtype=dtype)
    stride = settings.frames_between + 1
    for i in range(windows):
        out[:, :, i * stride : i * stride + window] = denoised[i]
    return out
