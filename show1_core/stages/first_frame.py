"""Stage 3, frame 0: the anchor frame of pixel super-resolution.

The paper upscales frame 0 with DeepFloyd IF-II-L (a gated checkpoint). Without it, a
bilinear upscale can stand in: stage 3 then carries a soft anchor through every window,
so the video comes out less detailed (see docs/STAGES.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..loading.registry import ModelRole
from ..loading.stage_model import StageModel
from ..settings import FirstFrameSettings
from ..validation.stage_inputs import check_first_frame_inputs
from .progress import StageSteps, StepCallback
from .sampling import PromptEmbeds, embeddings_for, guided_denoise, noise_like, scheduler_for, seeded_generator


def upscale_bilinear(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, C, height, width)``, bilinear with ``align_corners=True`` (the SR models' convention)."""
    return F.interpolate(images, (height, width), mode="bilinear", align_corners=True)


def noised_condition(model: StageModel, low_res: torch.Tensor, noise: torch.Tensor, noise_level: int) -> torch.Tensor:
    """Add noise to an upscaled condition at ``noise_level`` (one of the levels of the stage's noising scheduler)."""
    levels = torch.full((low_res.shape[0],), noise_level, device=low_res.device, dtype=torch.long)
    return model.noising_scheduler.add_noise(low_res, noise, levels)


def upscale_first_frame(
    model: StageModel,
    image: torch.Tensor,
    embeds: PromptEmbeds,
    height: int,
    width: int,
    settings: FirstFrameSettings = FirstFrameSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
    progress: StageSteps | None = None,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Super-resolve one frame per video with IF-II-L: ``(B, 3, h, w)`` -> ``(B, 3, height, width)``.

    Same procedure and random draws as diffusers' ``IFSuperResolutionPipeline`` that the
    original calls: noise for the sample, then noise for the condition, then the DDPM
    steps' own noise, all from one generator seeded with ``seed``. The inputs are checked first
    (:func:`~show1_core.validation.stage_inputs.check_first_frame_inputs`) unless ``checked``.
    """
    if not checked:
        check_first_frame_inputs(model, image, height, width, settings, seed)
    unet = model.unet
    batch = image.shape[0]
    embeds = embeddings_for(unet, embeds, ModelRole.FIRST_FRAME.title, batch)
    device, dtype = unet.device, unet.dtype

    scheduler = scheduler_for(model, settings.steps, device)
    generator = seeded_generator(seed)
    channels = unet.config.in_channels // 2
    sample = noise_like((batch, channels, height, width), generator, device, dtype) * scheduler.init_noise_sigma
    upscaled = upscale_bilinear(image.to(device, dtype), height, width)
    condition = noised_condition(model, upscaled, noise_like(upscaled.shape, generator, device, dtype), settings.noise_level)
    labels = torch.full((batch,), settings.noise_level, device=device, dtype=torch.long)
    video = guided_denoise(
        unet,
        scheduler,
        sample.unsqueeze(2),
        scheduler.timesteps,
        embeds,
        settings.guidance,
        progress=progress or StageSteps(ModelRole.FIRST_FRAME.value, 0, len(scheduler.timesteps)),
        condition=condition.unsqueeze(2),
        class_labels=labels,
        generator=generator,
        callback=callback,
        split_guidance=model.speed.split_guidance,
        cache=model.speed.cache.of(model.stage.value),
    )
    return video.squeeze(2)
