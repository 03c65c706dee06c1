"""Per-stage settings. Every default is the paper's setting (the original ``run_inference.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KeyframeSettings:
    """Stage 1: a short low-resolution video from text."""

    num_frames: int = 8
    height: int = 40
    width: int = 64
    steps: int = 75
    guidance: float = 9.0
    fps: float = 2.0


@dataclass(frozen=True)
class InterpolationSettings:
    """Stage 2: ``frames_between`` new frames between each pair of neighbouring frames."""

    frames_between: int = 3
    steps: int = 75
    guidance: float = 4.0
    window_batch: int | None = None
    """How many interpolation windows run as one batch (``None``: all of them)."""


@dataclass(frozen=True)
class FirstFrameSettings:
    """Stage 3, frame 0: DeepFloyd IF-II-L image super-resolution."""

    steps: int = 70
    guidance: float = 4.0
    noise_level: int = 150


@dataclass(frozen=True)
class PixelSRSettings:
    """Stage 3: x4 super-resolution in overlapping windows that carry one upscaled frame."""

    scale: int = 4
    steps: int = 125
    guidance: float = 7.0
    noise_level: int = 250
    window: int = 8
    stride: int = 7


@dataclass(frozen=True)
class LatentSRSettings:
    """Stage 4: re-noise to ``strength`` and refine in the latent space (diffusers' defaults the original keeps)."""

    width: int = 576
    height: int = 320
    steps: int = 50
    strength: float = 0.8
    guidance: float = 15.0
    eta: float = 0.0
    vae_batch: int = 8
    """Frames the VAE encodes or decodes at once (memory vs speed; results are identical)."""
    frame_window: int = 0
    """Frames the UNet denoises at once (0: all, as the original). Fewer bound the memory of long videos;
    each frame then sees only the frames of its windows (docs/STAGES.md)."""
    frame_overlap: int = 4
    """Frames neighbouring windows share when ``frame_window`` is set; their predictions are blended."""


@dataclass(frozen=True)
class CascadeSettings:
    """All four stages plus the prompts' defaults and the seed of the original example."""

    keyframes: KeyframeSettings = field(default_factory=KeyframeSettings)
    interpolation: InterpolationSettings = field(default_factory=InterpolationSettings)
    first_frame: FirstFrameSettings = field(default_factory=FirstFrameSettings)
    pixel_sr: PixelSRSettings = field(default_factory=PixelSRSettings)
    latent_sr: LatentSRSettings = field(default_factory=LatentSRSettings)
    seed: int = 345
    negative_prompt: str = ""
    """Negative prompt for the T5 stages (the original encodes the empty string)."""
    latent_negative_prompt: str = "low resolution, blur"
    """Negative prompt for the CLIP-conditioned stage 4."""


PAPER_SETTINGS = CascadeSettings()
