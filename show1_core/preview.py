"""Cheap preview images of an in-progress sample (for progress UIs such as ComfyUI's)."""

from __future__ import annotations

import torch
from PIL import Image

from .stages.progress import StepEvent

SD_LATENT_TO_RGB = torch.tensor(
    [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]
)
"""Linear map from Stable-Diffusion-family VAE latents to approximate RGB (the stage-4 VAE is one)."""


def preview_image(event: StepEvent, frame: int = 0) -> Image.Image:
    """One frame of the current clean estimate (else the sample) as an RGB image (approximate colours for latents)."""
    source = event.denoised if event.denoised is not None else event.sample
    sample = source[0, :, frame].detach().float().cpu()
    if sample.shape[0] == SD_LATENT_TO_RGB.shape[0]:
        rgb = torch.einsum("chw,cr->rhw", sample, SD_LATENT_TO_RGB)
    else:
        rgb = sample[:3]
    pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels)
