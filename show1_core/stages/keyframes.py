"""Stage 1: keyframes from text with the pixel-space base UNet."""

from __future__ import annotations

import torch

from ..loading.registry import ModelRole
from ..loading.stage_model import StageModel
from ..settings import KeyframeSettings
from ..validation.stage_inputs import check_keyframe_inputs
from .progress import StageSteps, StepCallback
from .sampling import PromptEmbeds, embeddings_for, guided_denoise, noise_like, scheduler_for, seeded_generator


def generate_keyframes(
    model: StageModel,
    embeds: PromptEmbeds,
    settings: KeyframeSettings = KeyframeSettings(),
    seed: int = 0,
    batch: int = 1,
    callback: StepCallback | None = None,
    progress: StageSteps | None = None,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Generate ``(batch, 3, num_frames, height, width)`` keyframes in [-1, 1].

    Runs on the device and in the precision of ``model.unet``. Same seed and embeddings
    give the original's keyframes. The inputs are checked first
    (:func:`~show1_core.validation.stage_inputs.check_keyframe_inputs`) unless ``checked``.
    """
    if not checked:
        check_keyframe_inputs(model, settings, seed, batch)
    unet = model.unet
    embeds = embeddings_for(unet, embeds, ModelRole.KEYFRAMES.title, batch)
    device, dtype = unet.device, unet.dtype

    scheduler = scheduler_for(model, settings.steps, device)
    generator = seeded_generator(seed)
    shape = (batch, unet.config.in_channels, settings.num_frames, settings.height, settings.width)
    sample = noise_like(shape, generator, device, dtype) * scheduler.init_noise_sigma
    return guided_denoise(
        unet,
        scheduler,
        sample,
        scheduler.timesteps,
        embeds,
        settings.guidance,
        progress=progress or StageSteps(ModelRole.KEYFRAMES.value, 0, len(scheduler.timesteps)),
        generator=generator,
        callback=callback,
        split_guidance=model.speed.split_guidance,
        cache=model.speed.cache.of(model.stage.value),
    )
