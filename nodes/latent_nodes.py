"""Stage 4 in latent space: VAE encode, latent refine and VAE decode as separate nodes.

``LATENT`` samples are 5-D ``[batch, 4, frames, height/8, width/8]`` latents of the show-1-sr2
VAE, raw (unscaled) as ComfyUI keeps every ``LATENT``: the refine node scales them for the
UNet inside. 4-D frame latents ``[frames, 4, h, w]`` (core VAE Encode with an SD-family VAE,
or the show-1-sr2 VAE's core ``VAE`` output) are taken as one video. Encode and decode halve
their frame chunk after an out-of-memory error (which changes the result only by float rounding).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from show1_core import PAPER_SETTINGS, EncoderKind, ModelRole
from show1_core.host import PlacedModel, latent_sr_problems, run_latent_refine, run_vae_decode, run_vae_encode

from .comfy_bridge import progress_callback
from .image_video import image_to_video, latent_samples, to_latent, video_to_image
from .types import LATENT_SR_MODEL, expect_embeddings, expect_stage
from .widgets import model_and_embeds, seed_input, size_input, socket, stage4_sampling_inputs, verdict, widget_problems

LATENT_CATEGORY = "Show-1/latent"
PAPER = PAPER_SETTINGS.latent_sr
MODEL_TOOLTIP = "The expert latent SR model (Show-1 stage 4 loader): its UNet refines, its VAE encodes and decodes."
IMAGES_TOOLTIP = "Video frames (an IMAGE batch, one frame per entry)."
LATENT_TOOLTIP = "A video LATENT: raw samples [batch, 4, frames, height/8, width/8], or [frames, 4, height/8, width/8] as one video."


class VAEEncode:
    """Resizes frames to the stage-4 size (8-bit, PIL, as the original) and encodes them with the show-1-sr2 VAE."""

    FUNCTION = "encode"
    CATEGORY = LATENT_CATEGORY
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Video latent [1, 4, frames, height/8, width/8].",)
    DESCRIPTION = (
        "Encodes video frames into Show-1 stage-4 latents (5-D [batch, channels, frames, height, width]), resizing "
        "them first as stage 4 does. Feed the result to Show-1 Latent Refine or other latent video nodes."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Model, frames, target size and the seed of the posterior sample."""
        return {
            "required": {
                "model": socket(LATENT_SR_MODEL, MODEL_TOOLTIP),
                "images": socket("IMAGE", IMAGES_TOOLTIP),
                "width": size_input("latent_sr.width", PAPER.width, "Width the frames are resized to before encoding"),
                "height": size_input("latent_sr.height", PAPER.height, "Height the frames are resized to before encoding"),
                "seed": seed_input(),
            }
        }

    def encode(self, model: PlacedModel, images: torch.Tensor, width: int, height: int, seed: int) -> tuple[dict]:
        """IMAGE -> LATENT."""
        stage = expect_stage(model, ModelRole.LATENT_SR, "model")
        video = image_to_video(images, "images", stage.model.unet.dtype)
        return (to_latent(run_vae_encode(stage, video, width, height, seed)),)


class LatentRefine:
    """Re-noises a stage-4 latent video to ``strength`` and denoises it with the expert latent SR UNet."""

    FUNCTION = "refine"
    CATEGORY = LATENT_CATEGORY
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The refined video latent, same shape as the input.",)
    DESCRIPTION = (
        "The denoising part of Show-1 stage 4 on a video LATENT (from Show-1 VAE Encode or other latent video nodes "
        "with 4 channels): re-noise to 'strength', then denoise with CLIP guidance."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Model, CLIP embeddings, latent and the stage-4 sampling settings."""
        return {
            "required": {
                **model_and_embeds(LATENT_SR_MODEL, MODEL_TOOLTIP, EncoderKind.CLIP),
                "latent": socket("LATENT", LATENT_TOOLTIP),
                **stage4_sampling_inputs(),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, steps: int | None = None, strength: float | None = None, guidance: float | None = None) -> bool | str:
        """Steps, strength and guidance in range, and a strength that leaves a step to run (see :func:`.widgets.widget_problems`)."""
        return verdict(widget_problems(latent_sr_problems, PAPER, steps=steps, strength=strength, guidance=guidance))

    def refine(
        self, model: PlacedModel, clip_embeds: object, latent: dict, steps: int, strength: float, guidance: float, seed: int
    ) -> tuple[dict]:
        """LATENT -> LATENT."""
        stage = expect_stage(model, ModelRole.LATENT_SR, "model")
        embeds = expect_embeddings(clip_embeds, EncoderKind.CLIP, "clip_embeds")
        samples = latent_samples(latent, "latent")
        settings = replace(PAPER, steps=steps, strength=strength, guidance=guidance)
        return (to_latent(run_latent_refine(stage, samples, embeds, settings, seed, progress_callback(ModelRole.LATENT_SR)), latent),)


class VAEDecode:
    """Decodes a stage-4 latent video with the show-1-sr2 VAE into frames."""

    FUNCTION = "decode"
    CATEGORY = LATENT_CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The decoded frames (the videos of a batch one after another).",)
    DESCRIPTION = "Decodes a Show-1 stage-4 video LATENT into an IMAGE frame batch with the show-1-sr2 VAE."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Model and latent."""
        return {
            "required": {
                "model": socket(LATENT_SR_MODEL, MODEL_TOOLTIP),
                "latent": socket("LATENT", LATENT_TOOLTIP),
            }
        }

    def decode(self, model: PlacedModel, latent: dict) -> tuple[torch.Tensor]:
        """LATENT -> IMAGE."""
        stage = expect_stage(model, ModelRole.LATENT_SR, "model")
        return (video_to_image(run_vae_decode(stage, latent_samples(latent, "latent")), clamp=True),)
