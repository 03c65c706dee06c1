"""One node per cascade stage. Video travels as IMAGE frame batches, with the frame rate as a FLOAT."""

from __future__ import annotations

from dataclasses import replace

import torch

from show1_core import PAPER_SETTINGS, EncoderKind, ModelRole, interpolated_fps
from show1_core.host import (
    LIMITS,
    PlacedModel,
    first_frame_problems,
    interpolation_problems,
    keyframe_problems,
    latent_sr_problems,
    pixel_sr_problems,
    run_interpolation,
    run_keyframes,
    run_latent_sr,
    run_pixel_sr,
    two_steps,
)

from .comfy_bridge import progress_callback
from .image_video import image_to_video, video_to_image
from .placement import request_planned_memory
from .types import (
    FIRST_FRAME_MODEL,
    INTERPOLATION_MODEL,
    KEYFRAME_MODEL,
    LATENT_SR_MODEL,
    PIXEL_SR_MODEL,
    expect_embeddings,
    expect_stage,
)
from .widgets import (
    fps_input,
    guidance_input,
    int_input,
    limited_input,
    model_and_embeds,
    seed_input,
    size_input,
    socket,
    stage4_sampling_inputs,
    steps_input,
    verdict,
    widget_problems,
)

KEYFRAMES, INTERPOLATION = PAPER_SETTINGS.keyframes, PAPER_SETTINGS.interpolation
FIRST_FRAME, PIXEL_SR, LATENT_SR = PAPER_SETTINGS.first_frame, PAPER_SETTINGS.pixel_sr, PAPER_SETTINGS.latent_sr
INTERPOLATED_FPS = interpolated_fps(KEYFRAMES.fps, INTERPOLATION.frames_between)
IMAGES_TOOLTIP = "The video frames (an IMAGE batch, one frame per entry)."
FPS_PASSTHROUGH = "Frame rate of the input video, passed through to the fps output (wire the previous stage's fps here)."


def _fps_output_tooltip(what: str) -> str:
    return f"Frame rate of the output video ({what}); wire it into Create Video or VHS Video Combine."


class VideoStage:
    """A cascade stage node: frames (IMAGE) and their frame rate (FLOAT) out."""

    CATEGORY = "Show-1"
    RETURN_TYPES = ("IMAGE", "FLOAT")
    RETURN_NAMES = ("images", "fps")


class Keyframes(VideoStage):
    """Stage 1: generates low-resolution keyframes from text with the pixel-space base model."""

    FUNCTION = "generate"
    OUTPUT_TOOLTIPS = ("The keyframes [frames, height, width, 3].", _fps_output_tooltip("the fps input"))
    DESCRIPTION = (
        "Show-1 stage 1: a short low-resolution video (8 keyframes at 64x40 in the paper) from T5 text embeddings. "
        "Fast enough to preview motion and text alignment before the expensive stages."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Model, embeddings and the keyframe settings (the paper's by default)."""
        return {
            "required": {
                **model_and_embeds(KEYFRAME_MODEL, "The keyframe model (Show-1 stage 1 loader).", EncoderKind.T5),
                "width": size_input("keyframes.width", KEYFRAMES.width, "Keyframe width"),
                "height": size_input("keyframes.height", KEYFRAMES.height, "Keyframe height"),
                "frames": limited_input(
                    "keyframes.num_frames", KEYFRAMES.num_frames, f"Number of keyframes (the paper uses {KEYFRAMES.num_frames})."
                ),
                "steps": steps_input("keyframes", KEYFRAMES.steps),
                "guidance": guidance_input("keyframes", KEYFRAMES.guidance),
                "seed": seed_input(),
                "fps": fps_input(KEYFRAMES.fps, f"Frame rate of the keyframes (the paper's {KEYFRAMES.fps} fps)."),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, guidance: float | None = None) -> bool | str:
        """Guidance in range and not NaN (see :func:`.widgets.widget_problems`).

        ComfyUI reports a failed ``VALIDATE_INPUTS`` against every input it names, so fps is left
        to its widget's own min/max (and a NaN fps to the check when the node runs).
        """
        return verdict(widget_problems(keyframe_problems, KEYFRAMES, guidance=guidance))

    def generate(
        self,
        model: PlacedModel,
        t5_embeds: object,
        width: int,
        height: int,
        frames: int,
        steps: int,
        guidance: float,
        seed: int,
        fps: float,
    ) -> tuple[torch.Tensor, float]:
        """Text embeddings -> keyframes."""
        stage = expect_stage(model, ModelRole.KEYFRAMES, "model")
        embeds = expect_embeddings(t5_embeds, EncoderKind.T5, "t5_embeds")
        settings = replace(KEYFRAMES, num_frames=frames, height=height, width=width, steps=steps, guidance=guidance, fps=fps)
        request_planned_memory([stage], lambda placed: run_keyframes(placed, embeds, two_steps(settings), seed))
        return (video_to_image(run_keyframes(stage, embeds, settings, seed, progress_callback(ModelRole.KEYFRAMES))), fps)


class Interpolation(VideoStage):
    """Stage 2: inserts frames between every pair of neighbouring frames."""

    FUNCTION = "interpolate"
    OUTPUT_TOOLTIPS = (
        "The interpolated video: frames + (frames - 1) * frames_between frames (8 keyframes -> 29).",
        _fps_output_tooltip("fps * (frames_between + 1), so the duration is kept"),
    )
    DESCRIPTION = (
        "Show-1 stage 2: temporal interpolation in pixel space. Each neighbouring pair of frames gets frames_between "
        "new frames; the fps output rises so the clip keeps its duration (2 fps -> 8 fps in the paper)."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Model, embeddings, frames and the interpolation settings."""
        return {
            "required": {
                **model_and_embeds(INTERPOLATION_MODEL, "The interpolation model (Show-1 stage 2 loader).", EncoderKind.T5),
                "images": socket("IMAGE", "The frames to interpolate (at least 2, e.g. the keyframes)."),
                "frames_between": limited_input(
                    "interpolation.frames_between",
                    INTERPOLATION.frames_between,
                    f"New frames between each pair (the paper uses {INTERPOLATION.frames_between}).",
                ),
                "steps": steps_input("interpolation", INTERPOLATION.steps),
                "guidance": guidance_input("interpolation", INTERPOLATION.guidance),
                "seed": seed_input(),
                "fps": fps_input(KEYFRAMES.fps, "Frame rate of the input frames (wire the keyframes' fps here)."),
                "window_batch": int_input(
                    0,
                    0,
                    int(LIMITS["keyframes.num_frames"].high),
                    "How many frame pairs are denoised at once (0: all). Halved automatically after an out-of-memory "
                    "error; the result changes only by float rounding.",
                ),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, guidance: float | None = None) -> bool | str:
        """Guidance in range and not NaN (see :func:`.widgets.widget_problems`)."""
        return verdict(widget_problems(interpolation_problems, INTERPOLATION, guidance=guidance))

    def interpolate(
        self,
        model: PlacedModel,
        t5_embeds: object,
        images: torch.Tensor,
        frames_between: int,
        steps: int,
        guidance: float,
        seed: int,
        fps: float,
        window_batch: int,
    ) -> tuple[torch.Tensor, float]:
        """Frames -> interpolated frames."""
        stage = expect_stage(model, ModelRole.INTERPOLATION, "model")
        embeds = expect_embeddings(t5_embeds, EncoderKind.T5, "t5_embeds")
        video = image_to_video(images, "images", stage.model.unet.dtype)
        settings = replace(INTERPOLATION, frames_between=frames_between, steps=steps, guidance=guidance, window_batch=window_batch or None)
        request_planned_memory([stage], lambda placed: run_interpolation(placed, video, embeds, two_steps(settings), seed))
        interpolated = run_interpolation(stage, video, embeds, settings, seed, progress_callback(ModelRole.INTERPOLATION))
        return (video_to_image(interpolated), interpolated_fps(fps, frames_between))


class PixelSR(VideoStage):
    """Stage 3: x4 super-resolution in pixel space, in overlapping windows anchored on an upscaled first frame."""

    FUNCTION = "upscale"
    OUTPUT_TOOLTIPS = ("The video at 4x the width and height (256x160 in the paper).", _fps_output_tooltip("the fps input"))
    DESCRIPTION = (
        "Show-1 stage 3: x4 pixel super-resolution (64x40 -> 256x160 in the paper). Frame 0 is upscaled first, with "
        "IF-II-L when its model is connected (the paper's setting) or bilinearly otherwise, which gives softer detail "
        "in every frame since each window carries that anchor on."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Model, embeddings, frames, the SR settings and the optional IF-II-L first-frame model and its settings."""
        return {
            "required": {
                **model_and_embeds(PIXEL_SR_MODEL, "The pixel super-resolution model (Show-1 stage 3 loader).", EncoderKind.T5),
                "images": socket("IMAGE", "The low-resolution frames (width and height multiples of 4)."),
                "steps": steps_input("pixel_sr", PIXEL_SR.steps),
                "guidance": guidance_input("pixel_sr", PIXEL_SR.guidance),
                "noise_level": limited_input(
                    "pixel_sr.noise_level",
                    PIXEL_SR.noise_level,
                    f"Noise added to the upscaled condition (the paper uses {PIXEL_SR.noise_level}).",
                ),
                "seed": seed_input(),
                "fps": fps_input(INTERPOLATED_FPS, FPS_PASSTHROUGH),
            },
            "optional": {
                "first_frame_model": socket(
                    FIRST_FRAME_MODEL,
                    "IF-II-L (gated) upscales frame 0, as in the paper. Leave unconnected for a bilinear first frame: "
                    "no extra download, but softer detail throughout the video.",
                ),
                "first_frame_steps": steps_input("first_frame", FIRST_FRAME.steps),
                "first_frame_guidance": guidance_input("first_frame", FIRST_FRAME.guidance),
                "first_frame_noise_level": limited_input(
                    "first_frame.noise_level",
                    FIRST_FRAME.noise_level,
                    f"IF-II-L condition noise level (the paper uses {FIRST_FRAME.noise_level}).",
                ),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, guidance: float | None = None, first_frame_guidance: float | None = None) -> bool | str:
        """Both guidance scales in range and not NaN (see :func:`.widgets.widget_problems`)."""
        return verdict(
            widget_problems(pixel_sr_problems, PIXEL_SR, guidance=guidance)
            + widget_problems(first_frame_problems, FIRST_FRAME, guidance=first_frame_guidance)
        )

    def upscale(
        self,
        model: PlacedModel,
        t5_embeds: object,
        images: torch.Tensor,
        steps: int,
        guidance: float,
        noise_level: int,
        seed: int,
        fps: float,
        first_frame_model: PlacedModel | None = None,
        first_frame_steps: int = FIRST_FRAME.steps,
        first_frame_guidance: float = FIRST_FRAME.guidance,
        first_frame_noise_level: int = FIRST_FRAME.noise_level,
    ) -> tuple[torch.Tensor, float]:
        """Low-resolution frames -> frames at 4x the size."""
        stage = expect_stage(model, ModelRole.PIXEL_SR, "model")
        embeds = expect_embeddings(t5_embeds, EncoderKind.T5, "t5_embeds")
        anchor = None if first_frame_model is None else expect_stage(first_frame_model, ModelRole.FIRST_FRAME, "first_frame_model")
        video = image_to_video(images, "images", stage.model.unet.dtype)
        settings = replace(PIXEL_SR, steps=steps, guidance=guidance, noise_level=noise_level)
        anchor_settings = replace(FIRST_FRAME, steps=first_frame_steps, guidance=first_frame_guidance, noise_level=first_frame_noise_level)

        def planned_run(placed: PlacedModel, *first_frame: PlacedModel) -> object:
            anchor_twin = first_frame[0] if first_frame else None
            return run_pixel_sr(placed, video, embeds, two_steps(settings), seed, None, anchor_twin, two_steps(anchor_settings))

        request_planned_memory([stage, anchor], planned_run)
        upscaled, _ = run_pixel_sr(stage, video, embeds, settings, seed, progress_callback(ModelRole.PIXEL_SR), anchor, anchor_settings)
        return (video_to_image(upscaled), fps)


class LatentSR(VideoStage):
    """Stage 4: expert latent super-resolution, frames in and frames out (exactly the cascade's stage 4)."""

    FUNCTION = "upscale"
    OUTPUT_TOOLTIPS = ("The video at width x height (576x320 in the paper).", _fps_output_tooltip("the fps input"))
    DESCRIPTION = (
        "Show-1 stage 4: resizes the frames to width x height (8-bit, PIL, as the original), encodes them with the "
        "VAE, re-noises to 'strength', refines with the expert latent UNet under CLIP guidance and decodes. Works on "
        "any model's frames; the same steps are available as separate LATENT nodes under Show-1/latent."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Model, CLIP embeddings, frames and the stage-4 settings."""
        return {
            "required": {
                **model_and_embeds(LATENT_SR_MODEL, "The expert latent SR model (Show-1 stage 4 loader).", EncoderKind.CLIP),
                "images": socket("IMAGE", IMAGES_TOOLTIP),
                "width": size_input("latent_sr.width", LATENT_SR.width, "Output width"),
                "height": size_input("latent_sr.height", LATENT_SR.height, "Output height"),
                **stage4_sampling_inputs(),
                "fps": fps_input(INTERPOLATED_FPS, FPS_PASSTHROUGH),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, steps: int | None = None, strength: float | None = None, guidance: float | None = None) -> bool | str:
        """Steps, strength and guidance in range, and a strength that leaves a step to run (see :func:`.widgets.widget_problems`)."""
        return verdict(widget_problems(latent_sr_problems, LATENT_SR, steps=steps, strength=strength, guidance=guidance))

    def upscale(
        self,
        model: PlacedModel,
        clip_embeds: object,
        images: torch.Tensor,
        width: int,
        height: int,
        steps: int,
        strength: float,
        guidance: float,
        seed: int,
        fps: float,
    ) -> tuple[torch.Tensor, float]:
        """Frames -> frames at width x height."""
        stage = expect_stage(model, ModelRole.LATENT_SR, "model")
        embeds = expect_embeddings(clip_embeds, EncoderKind.CLIP, "clip_embeds")
        video = image_to_video(images, "images", stage.model.unet.dtype)
        settings = replace(LATENT_SR, width=width, height=height, steps=steps, strength=strength, guidance=guidance)
        request_planned_memory([stage], lambda placed: run_latent_sr(placed, video, embeds, two_steps(settings), seed))
        return (
            video_to_image(run_latent_sr(stage, video, embeds, settings, seed, progress_callback(ModelRole.LATENT_SR)), clamp=True),
            fps,
        )
