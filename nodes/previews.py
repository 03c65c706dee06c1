"""Step previews through ComfyUI's own preview system (``latent_preview``).

ComfyUI's ``latent_preview.get_previewer(device, latent_format)`` honours ``--preview-method``
(none, the default, gives no previewer, so nothing is computed) and its previewers return
``("JPEG", image, --preview-size)``; it is also what animated-preview packs hook. The pixel
stages hand it the predicted clean frame (x0) in [-1, 1] through an identity RGB format, as
core's pixel-space ``ChromaRadiance`` format does; stage 4 hands it SD-family latents with
core's ``SD15`` format (Latent2RGB, or TAESD when ``taesd_decoder`` is installed).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from show1_core import ModelRole, StepEvent


class PixelFrames:
    """A ComfyUI latent format for pixel frames in [-1, 1]: RGB is the identity, no TAESD."""

    latent_channels = 3
    latent_rgb_factors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    latent_rgb_factors_bias = None
    taesd_decoder_name = None


def stage_previewer(stage: ModelRole, device: torch.device) -> Any | None:
    """ComfyUI's previewer for a stage's samples, or ``None`` when previews are off (or outside ComfyUI)."""
    try:
        latent_preview = importlib.import_module("latent_preview")
        latent_format = importlib.import_module("comfy.latent_formats").SD15() if stage == ModelRole.LATENT_SR else PixelFrames()
    except ImportError:
        return None
    return latent_preview.get_previewer(device, latent_format)


def step_preview(previewer: Any | None, event: StepEvent) -> tuple | None:
    """The preview of frame 0 of the step's clean estimate (x0), in ComfyUI's ``(format, image, size)`` form."""
    if previewer is None or event.step == 0:
        return None
    source = event.denoised if event.denoised is not None else event.sample
    return previewer.decode_latent_to_preview_image("JPEG", source[:1, :, 0].detach())
