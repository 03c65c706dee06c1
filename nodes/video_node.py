"""Show-1 Upscale Video: a core ``VIDEO`` in, the same video through stages 3 and 4 out, frame rate and audio kept.

Core ComfyUI's ``VIDEO`` is a ``VideoInput`` whose ``get_components()`` gives
``VideoComponents(images, frame_rate, audio)``; a new one is made with
``comfy_api.latest.InputImpl.VideoFromComponents`` (``comfy_api/latest/_input_impl/video_types.py``).
Without ComfyUI the node returns :class:`ComponentsVideo`, shaped the same way.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F

from show1_core import PAPER_SETTINGS, InputError
from show1_core.host import PlacedModel, latent_sr_problems

from .comfy_bridge import comfy_runtime
from .model_folders import public_message
from .stage_nodes import LatentSR, PixelSR
from .types import CLIP_EMBEDS, FIRST_FRAME_MODEL, LATENT_SR_MODEL, PIXEL_SR_MODEL, T5_EMBEDS
from .widgets import seed_input, size_input, socket, steps_input, strength_input, verdict, widget_problems

LATENT_SR, PIXEL = PAPER_SETTINGS.latent_sr, PAPER_SETTINGS.pixel_sr
STAGE3_WIDTH, STAGE3_HEIGHT = PAPER_SETTINGS.keyframes.width, PAPER_SETTINGS.keyframes.height


@dataclass
class VideoComponents:
    """The parts of a video, as core's ``comfy_api`` ``VideoComponents``: frames ``[T, H, W, 3]`` in 0..1."""

    images: torch.Tensor
    frame_rate: Fraction
    audio: Any | None = None
    metadata: dict | None = None


class ComponentsVideo:
    """A ``VIDEO`` value made from components, as core's ``VideoFromComponents`` (used outside ComfyUI)."""

    def __init__(self, components: VideoComponents):
        self._components = components

    def get_components(self) -> VideoComponents:
        """Frames, frame rate and audio."""
        return VideoComponents(self._components.images, self._components.frame_rate, self._components.audio)

    def get_dimensions(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self._components.images.shape[2], self._components.images.shape[1]


def make_video(images: torch.Tensor, frame_rate: Fraction, audio: Any | None) -> Any:
    """A ``VIDEO``: core's ``VideoFromComponents`` inside ComfyUI, else :class:`ComponentsVideo`."""
    try:
        latest = importlib.import_module("comfy_api.latest")
    except ImportError:
        return ComponentsVideo(VideoComponents(images, frame_rate, audio))
    return latest.InputImpl.VideoFromComponents(latest.Types.VideoComponents(images=images, audio=audio, frame_rate=frame_rate))


def components_of(video: Any) -> Any:
    """The components of a ``VIDEO`` input, or a clear error for anything else."""
    if not callable(getattr(video, "get_components", None)):
        raise InputError(f"video needs a VIDEO (from Load Video or any video node), got {type(video).__name__}")
    try:
        return video.get_components()
    except Exception as err:  # core's VideoFromFile decodes here: PyAV's errors for a corrupt or empty file, and others
        lines = str(err).strip().splitlines()
        reason = public_message(lines[-1] if lines else type(err).__name__)
        raise InputError(f"the video cannot be read ({reason}); load a complete video file") from None


def scale_frames(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Frames ``[T, H, W, 3]`` centre-cropped to the aspect of ``width`` x ``height`` and resized (area) to it.

    Inside ComfyUI this is core's ``comfy.utils.common_upscale`` (what its Upscale Image node runs);
    without ComfyUI, :func:`_centre_crop_upscale` does the same arithmetic.
    """
    runtime = comfy_runtime()
    upscale = runtime.utils.common_upscale if runtime else _centre_crop_upscale
    return upscale(images.movedim(-1, 1).float(), width, height, "area", "center").movedim(1, -1)


def _centre_crop_upscale(samples: torch.Tensor, width: int, height: int, method: str, crop: str) -> torch.Tensor:
    """``common_upscale`` for ``[B, C, H, W]`` frames and the modes of ``F.interpolate``, as ComfyUI crops them."""
    old_height, old_width = samples.shape[-2:]
    old_aspect, new_aspect = old_width / old_height, width / height
    x = round((old_width - old_width * (new_aspect / old_aspect)) / 2) if crop == "center" and old_aspect > new_aspect else 0
    y = round((old_height - old_height * (old_aspect / new_aspect)) / 2) if crop == "center" and old_aspect < new_aspect else 0
    cropped = samples.narrow(-2, y, old_height - 2 * y).narrow(-1, x, old_width - 2 * x)
    return F.interpolate(cropped, size=(height, width), mode=method)


class UpscaleVideo:
    """Upscales any video with Show-1's stages 3 and 4: VIDEO in, VIDEO out, frame rate and audio kept.

    The frames are centre-cropped and scaled to a quarter of the output's stage-3 size (64x40 in the paper), upscaled x4
    in pixel space (IF-II-L first frame when its model is connected, else bilinear) and refined to width x height by the
    expert latent SR model. Describe the video in the prompt of Show-1 Text Encode.
    """

    FUNCTION = "upscale"
    CATEGORY = "Show-1"
    RETURN_TYPES = ("VIDEO",)
    RETURN_NAMES = ("video",)
    OUTPUT_TOOLTIPS = ("The upscaled video, with the input's frame rate and audio; wire it into Save Video.",)
    DESCRIPTION = (
        "Show-1 stages 3 and 4 on any video: Load Video -> Show-1 Upscale Video -> Save Video. The frames are scaled to "
        "64x40 (the paper's), upscaled x4 in pixel space and refined to 576x320 by the expert latent SR model; frame "
        "rate and audio pass through."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The video, both stage models and their embeddings, the sizes and the sampling settings."""
        return {
            "required": {
                "video": socket("VIDEO", "The video to upscale (Load Video, or any node that outputs VIDEO)."),
                "pixel_sr_model": socket(PIXEL_SR_MODEL, "The pixel super-resolution model (Show-1 stage 3 loader)."),
                "t5_embeds": socket(T5_EMBEDS, "T5 embeddings of a prompt describing the video (Show-1 Text Encode)."),
                "latent_sr_model": socket(LATENT_SR_MODEL, "The expert latent SR model (Show-1 stage 4 loader)."),
                "clip_embeds": socket(CLIP_EMBEDS, "CLIP embeddings of the same prompt (Show-1 Text Encode)."),
                "stage3_width": size_input(
                    "keyframes.width", STAGE3_WIDTH, "Width the frames are scaled to before the x4 pixel SR", multiple=4
                ),
                "stage3_height": size_input(
                    "keyframes.height", STAGE3_HEIGHT, "Height the frames are scaled to before the x4 pixel SR", multiple=4
                ),
                "width": size_input("latent_sr.width", LATENT_SR.width, "Output width"),
                "height": size_input("latent_sr.height", LATENT_SR.height, "Output height"),
                "pixel_sr_steps": steps_input("pixel_sr", PIXEL.steps),
                "latent_sr_steps": steps_input("latent_sr", LATENT_SR.steps),
                "strength": strength_input(),
                "seed": seed_input(),
            },
            "optional": {
                "first_frame_model": socket(
                    FIRST_FRAME_MODEL, "IF-II-L (gated) for frame 0, as in the paper; unconnected: a bilinear first frame."
                ),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, latent_sr_steps: int | None = None, strength: float | None = None) -> bool | str:
        """Stage-4 steps and a strength that leave a step to run, checked before stage 3 spends its time."""
        return verdict(widget_problems(latent_sr_problems, LATENT_SR, steps=latent_sr_steps, strength=strength))

    def upscale(
        self,
        video: Any,
        pixel_sr_model: PlacedModel,
        t5_embeds: object,
        latent_sr_model: PlacedModel,
        clip_embeds: object,
        stage3_width: int,
        stage3_height: int,
        width: int,
        height: int,
        pixel_sr_steps: int,
        latent_sr_steps: int,
        strength: float,
        seed: int,
        first_frame_model: PlacedModel | None = None,
    ) -> tuple[Any]:
        """VIDEO -> VIDEO at width x height, through Show-1 Pixel SR and Expert Latent SR."""
        components = components_of(video)
        fps = float(components.frame_rate)
        small = scale_frames(components.images, stage3_width, stage3_height)
        upscaled, _ = PixelSR().upscale(
            pixel_sr_model, t5_embeds, small, pixel_sr_steps, PIXEL.guidance, PIXEL.noise_level, seed, fps, first_frame_model
        )
        final, _ = LatentSR().upscale(
            latent_sr_model, clip_embeds, upscaled, width, height, latent_sr_steps, strength, LATENT_SR.guidance, seed, fps
        )
        return (make_video(final, components.frame_rate, components.audio),)
