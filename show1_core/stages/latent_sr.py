"""Stage 4: expert latent super-resolution (ModelScope/zeroscope-style video-to-video).

The stage-3 video is quantised to 8-bit frames and resized with PIL (exactly what the
original feeds this stage), encoded with the VAE, re-noised to ``strength`` and denoised
by the latent UNet (trained on timesteps 0-900 only, hence ``strength`` < 1), then decoded.
The pieces are separate functions so a caller can stop at the latents (ComfyUI ``LATENT``)
and decode later.

Latents between the pieces are *raw* (the VAE's own scale, as ComfyUI keeps ``LATENT``
samples): :func:`refine_latents` multiplies them by the VAE's ``scaling_factor`` for the UNet
and returns ``1 / scaling_factor`` times its result, the same arithmetic as the original's
``scaling_factor * sample`` before denoising and ``1 / scaling_factor * latents`` before
decoding, so the pieces compose bit for bit into the original's stage.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from ..errors import NonFiniteOutputError
from ..loading.registry import ModelRole
from ..loading.stage_model import StageModel
from ..memory import retry_smaller_on_oom
from ..settings import LatentSRSettings
from ..validation.ranges import frame_size_problems, raise_problems
from ..validation.stage_inputs import check_latent_refine_inputs, check_latent_sr_inputs
from ..validation.tensors import all_finite, check_positive, check_vae_frame_size, check_video
from .frames import resize_uint8_frames, to_uint8_frames, uint8_frames_to_video
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


def prepare_input(video: torch.Tensor, width: int, height: int, *, checked: bool = False) -> tuple[np.ndarray, torch.Tensor]:
    """The stage-4 input from a stage-3 video: (uint8 frames at the target size, float video in [-1, 1]).

    The size and the video are checked first unless ``checked``.
    """
    if not checked:
        raise_problems(frame_size_problems("latent_sr", width, height))
        check_video(video, "the video to super-resolve", pixels=True)
    frames = resize_uint8_frames(to_uint8_frames(video), width, height)
    return frames, uint8_frames_to_video(frames)


@torch.no_grad()
def encode_video(
    vae: AutoencoderKL, video: torch.Tensor, generator: torch.Generator, frames_per_batch: int = 8, *, checked: bool = False
) -> torch.Tensor:
    """VAE-encode ``(B, 3, F, H, W)`` to raw latents ``(B, 4, F, H/8, W/8)`` (one posterior sample).

    Frames are encoded ``frames_per_batch`` at a time (fewer after an out-of-memory error),
    then one posterior sample is drawn for all of them, so the chunk size never shifts the
    random draws. The video is checked first unless ``checked``.
    """
    if not checked:
        check_video(video, "the video to encode", pixels=True)
        check_vae_frame_size(vae, video.shape[-1], video.shape[-2])
        check_positive(frames_per_batch=frames_per_batch)
    images = frames_to_batch(video.to(vae.device, vae.dtype))

    def encode(chunk: int) -> torch.Tensor:
        return torch.cat([vae.encode(part).latent_dist.parameters for part in images.split(chunk)])

    moments = retry_smaller_on_oom(encode, frames_per_batch, vae.device, "VAE encoding")
    return batch_to_frames(DiagonalGaussianDistribution(moments).sample(generator), video.shape[0])


@torch.no_grad()
def decode_latents(
    vae: AutoencoderKL, latents: torch.Tensor, frames_per_batch: int = 8, dtype: torch.dtype = torch.float32, *, checked: bool = False
) -> torch.Tensor:
    """Decode raw ``(B, 4, F, h, w)`` latents to the ``(B, 3, F, h*8, w*8)`` video (before display mapping).

    ``frames_per_batch`` frames at a time, fewer after an out-of-memory error. The video is
    returned in ``dtype``: float32 by default, as the original's decode ends with ``.float()``.
    The latents are checked first unless ``checked``.
    """
    if not checked:
        check_video(latents, "the latents to decode", channels=vae.config.latent_channels)
        check_positive(frames_per_batch=frames_per_batch)
    flat = frames_to_batch(latents.to(vae.device, vae.dtype))

    def decode(chunk: int) -> torch.Tensor:
        return torch.cat([vae.decode(part).sample for part in flat.split(chunk)])

    images = retry_smaller_on_oom(decode, frames_per_batch, vae.device, "VAE decoding")
    if not all_finite(images):
        advice = "fp16 overflow: decode in bf16 or fp32" if images.dtype == torch.float16 else "the latents drive the VAE out of range"
        raise NonFiniteOutputError(f"the VAE decoded NaN or infinite values ({advice})")
    return batch_to_frames(images, latents.shape[0]).to(dtype)


def refine_latents(
    model: StageModel,
    latents: torch.Tensor,
    embeds: PromptEmbeds,
    settings: LatentSRSettings = LatentSRSettings(),
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    progress: StageSteps | None = None,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Re-noise raw latents to ``settings.strength`` and denoise them with the expert UNet; returns raw latents.

    The inputs are checked first (:func:`~show1_core.validation.stage_inputs.check_latent_refine_inputs`)
    unless ``checked``.
    """
    if not checked:
        check_latent_refine_inputs(model, latents, settings)
    scaling = model.vae.config.scaling_factor
    unet = model.unet
    batch = latents.shape[0]
    embeds = embeddings_for(unet, embeds, ModelRole.LATENT_SR.title, batch)
    device, dtype = unet.device, unet.dtype

    scheduler = scheduler_for(model, settings.steps, device)
    kept = min(int(settings.steps * settings.strength), settings.steps)
    start = max(settings.steps - kept, 0) * scheduler.order
    timesteps = scheduler.timesteps[start:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    clean = frames_to_batch(latents.to(device, dtype) * scaling)
    noisy = scheduler.add_noise(clean, noise_like(clean.shape, generator, device, dtype), timesteps[:1])
    refined = guided_denoise(
        unet,
        scheduler,
        batch_to_frames(noisy, batch),
        timesteps,
        embeds,
        settings.guidance,
        progress=progress or StageSteps(ModelRole.LATENT_SR.value, 0, len(timesteps)),
        generator=generator,
        eta=settings.eta,
        callback=callback,
        frame_window=settings.frame_window,
        frame_overlap=settings.frame_overlap,
        split_guidance=model.speed.split_guidance,
        cache=model.speed.cache.of(model.stage.value),
    )
    return 1 / scaling * refined


def super_resolve_latent(
    model: StageModel,
    video: torch.Tensor,
    embeds: PromptEmbeds,
    settings: LatentSRSettings = LatentSRSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Encode, refine and decode a video already at the target size (``(B, 3, F, H, W)`` in [-1, 1]).

    One generator seeded with ``seed`` draws, in order, the VAE posterior sample, the
    re-noising noise and any scheduler noise: the original's order. A video of another size
    than ``settings.width`` x ``settings.height`` raises :class:`InputError` (it is not resized here).
    The inputs are checked first (:func:`~show1_core.validation.stage_inputs.check_latent_sr_inputs`)
    unless ``checked``; the pieces after it skip their own checks.
    """
    if not checked:
        check_latent_sr_inputs(model, video, settings, seed)
    vae = model.vae
    generator = seeded_generator(seed)
    latents = encode_video(vae, video, generator, settings.vae_batch, checked=True)
    refined = refine_latents(model, latents, embeds, settings, generator, callback, checked=True)
    return decode_latents(vae, refined, settings.vae_batch, checked=True)
