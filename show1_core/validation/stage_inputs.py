"""What a stage checks before its first step: one call per stage, settings, model and input tensors together.

The stage functions (:mod:`show1_core.stages`) and the runner over them make this call
unless told ``checked=True``: :class:`~show1_core.cascade.Show1Cascade` checks every stage up
front (:func:`~show1_core.validation.cascade.validate_cascade`) and feeds each stage the
previous stage's output, so its stage runs skip it.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..loading.registry import ModelRole
from ..loading.stage_model import StageModel
from ..settings import FirstFrameSettings, InterpolationSettings, KeyframeSettings, LatentSRSettings, PixelSRSettings
from .ranges import (
    first_frame_problems,
    interpolation_problems,
    keyframe_problems,
    latent_sr_problems,
    pixel_sr_problems,
    raise_problems,
    seed_problems,
)
from .tensors import check_image, check_positive, check_spatial_size, check_vae_frame_size, check_video


def check_noise_level(model: StageModel, noise_level: int) -> None:
    """``noise_level`` must be one of the levels of the model's noising scheduler."""
    levels = model.noising_scheduler.config.num_train_timesteps
    if not 0 <= noise_level < levels:
        raise InputError(
            f"noise_level must be from 0 to {levels - 1} (the levels of the {model.stage.title} noising scheduler), got {noise_level}"
        )


def check_keyframe_inputs(model: StageModel, settings: KeyframeSettings, seed: int, batch: int) -> None:
    """Stage 1: the model's role, seed, settings, batch size and the frame size against the UNet."""
    model.require(ModelRole.KEYFRAMES)
    raise_problems(seed_problems(seed) + keyframe_problems(settings))
    check_positive(batch=batch)
    check_spatial_size(model.unet, settings.height, settings.width, ModelRole.KEYFRAMES)


def check_interpolation_inputs(model: StageModel, frames: torch.Tensor, settings: InterpolationSettings, seed: int) -> None:
    """Stage 2: the model's role, seed, settings, and a video of at least 2 frames the UNet can take."""
    model.require(ModelRole.INTERPOLATION)
    raise_problems(seed_problems(seed) + interpolation_problems(settings))
    check_video(frames, "the video to interpolate", min_frames=2, pixels=True)
    check_spatial_size(model.unet, frames.shape[-2], frames.shape[-1], ModelRole.INTERPOLATION)


def check_first_frame_inputs(
    model: StageModel, image: torch.Tensor, height: int, width: int, settings: FirstFrameSettings, seed: int
) -> None:
    """Stage 3's IF-II-L frame: the model's role, seed, settings, the frame and the size it is upscaled to."""
    model.require(ModelRole.FIRST_FRAME)
    raise_problems(seed_problems(seed) + first_frame_problems(settings))
    check_image(image, "the frame to upscale")
    check_spatial_size(model.unet, height, width, ModelRole.FIRST_FRAME)
    check_noise_level(model, settings.noise_level)


def check_pixel_sr_inputs(
    model: StageModel, video: torch.Tensor, settings: PixelSRSettings, seed: int, first_frame: torch.Tensor | None = None
) -> None:
    """Stage 3's windows: the model's role, seed, settings, the video, its upscaled size against the UNet and,
    when given, the upscaled frame 0 that matches it."""
    model.require(ModelRole.PIXEL_SR)
    raise_problems(seed_problems(seed) + pixel_sr_problems(settings))
    check_video(video, "the video to upscale", pixels=True)
    batch, _, _, low_h, low_w = video.shape
    height, width = low_h * settings.scale, low_w * settings.scale
    check_spatial_size(model.unet, height, width, ModelRole.PIXEL_SR)
    check_noise_level(model, settings.noise_level)
    if first_frame is not None:
        check_image(first_frame, "the upscaled first frame")
        if tuple(first_frame.shape) != (batch, 3, height, width):
            raise InputError(
                f"the upscaled first frame must be {(batch, 3, height, width)} to match the video, got {tuple(first_frame.shape)}"
            )


def require_vae(model: StageModel) -> None:
    """The expert latent SR model, loaded with the VAE its stage encodes and decodes with."""
    model.require(ModelRole.LATENT_SR)
    if model.vae is None:
        raise InputError("the expert latent super-resolution model was loaded without its VAE (show-1-sr2/vae)")


def check_latent_refine_inputs(model: StageModel, latents: torch.Tensor, settings: LatentSRSettings) -> None:
    """Stage 4's denoising: the model (with its VAE's scaling factor), settings and latents the UNet takes."""
    require_vae(model)
    raise_problems(latent_sr_problems(settings))
    check_video(latents, "the latents to refine", channels=model.unet.config.in_channels)


def check_latent_sr_inputs(model: StageModel, video: torch.Tensor, settings: LatentSRSettings, seed: int, resized: bool = True) -> None:
    """Stage 4 whole: the model and its VAE, seed, settings and a pixel video; with ``resized``, already at the
    settings' size (``False``: any size, resized to it first)."""
    require_vae(model)
    raise_problems(seed_problems(seed) + latent_sr_problems(settings))
    check_video(video, "the video to super-resolve", pixels=True)
    height, width = video.shape[-2:]
    if resized and (width, height) != (settings.width, settings.height):
        raise InputError(
            f"the video is {width}x{height}, but the settings ask for {settings.width}x{settings.height}; "
            "super_resolve_latent takes a video already at the target size (resize it with prepare_input, or call "
            "run_latent_sr, which does)"
        )
    check_vae_frame_size(model.vae, settings.width, settings.height)
