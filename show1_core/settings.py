"""Per-stage settings. Every default is the paper's setting (the original ``run_inference.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import InputError


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
STAGE_FIELDS = ("keyframes", "interpolation", "first_frame", "pixel_sr", "latent_sr")
"""The per-stage settings of :class:`CascadeSettings`, in cascade order."""

DEMO_APP_SETTINGS = replace(
    PAPER_SETTINGS,
    keyframes=replace(PAPER_SETTINGS.keyframes, steps=75),
    interpolation=replace(PAPER_SETTINGS.interpolation, steps=50),
    first_frame=replace(PAPER_SETTINGS.first_frame, steps=50),
    pixel_sr=replace(PAPER_SETTINGS.pixel_sr, steps=50),
    latent_sr=replace(PAPER_SETTINGS.latent_sr, steps=50),
)
"""The paper's settings with the step counts of the original demo app (``app.py``: 75/50/50/50/50), about half
the compute of the paper's 75/75/70/125/50."""
PRESETS = {"paper": PAPER_SETTINGS, "demo-app": DEMO_APP_SETTINGS}
"""Named starting points for every stage's settings (``--preset``)."""


TRAINABLE_STAGE_NAMES = ("keyframes", "interpolation")
"""Stages a motion LoRA can be trained for (``ModelRole`` values): the two that decide the motion."""
ATTENTION_BACKENDS = ("sdpa", "native", "flash", "sage", "xformers")
"""``sdpa``: show1's own attention processors (PyTorch scaled-dot-product attention, today's numbers).
The others run through diffusers' attention dispatcher: ``native`` (PyTorch SDPA there), ``flash``
(flash-attn), ``sage`` (SageAttention) and ``xformers``; the last three need their package and a CUDA GPU."""
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
"""``torch.compile`` backends: ``inductor`` generates kernels (the speed-up); ``aot_eager`` and ``eager``
only trace, for checking that compilation works."""


CACHE_METHODS = ("off", "step", "pab", "taylorseer")
"""Step caching methods: ``off``; ``step``, show1's whole-step skip (the UNet's last prediction reused while its
input's estimated change stays under a threshold); ``pab``, diffusers' Pyramid Attention Broadcast (attention outputs
reused for ``interval - 1`` steps); ``taylorseer``, diffusers' TaylorSeer cache (attention outputs extrapolated for
``interval - 1`` steps). docs/PERFORMANCE.md says what each one was measured to do."""
CACHE_PARAMETERS = {
    "off": (),
    "step": ("threshold", "start", "end"),
    "pab": ("interval", "start", "end"),
    "taylorseer": ("interval", "start", "end"),
}
"""The parameters each cache method reads."""


@dataclass(frozen=True)
class CacheSettings:
    """How one stage model's denoising loop reuses work between steps. The default, ``off``, changes nothing.

    Steps ``start`` to ``end - 1`` (counted from 0 in each denoising loop; ``end`` ``None``: to the last) may reuse
    work; the others always run in full. ``threshold`` 0 or ``interval`` 1 skips nothing (identical to ``off``).
    """

    method: str = "off"
    """One of :data:`CACHE_METHODS`."""
    threshold: float = 0.05
    """``step``: the largest estimated relative change of the UNet's prediction a skipped step may accumulate."""
    interval: int = 2
    """``pab`` and ``taylorseer``: the attention layers compute every ``interval``-th step and reuse in between."""
    start: int = 2
    """The first step that may reuse work (earlier steps compute in full and prime the cache)."""
    end: int | None = None
    """The step from which every step computes in full again (``None``: none, caching to the last step)."""

    def __post_init__(self) -> None:
        from .validation.cache import cache_problems

        problems = cache_problems(self)
        if problems:
            raise InputError(f"{problems[0]}")


@dataclass(frozen=True)
class StageCaches:
    """The step cache of each stage model (stage 3 runs two: ``first_frame`` and ``pixel_sr``); all ``off`` by default."""

    keyframes: CacheSettings = CacheSettings()
    interpolation: CacheSettings = CacheSettings()
    first_frame: CacheSettings = CacheSettings()
    pixel_sr: CacheSettings = CacheSettings()
    latent_sr: CacheSettings = CacheSettings()

    @classmethod
    def every(cls, cache: CacheSettings) -> "StageCaches":
        """The same cache for all five stage models."""
        return cls(cache, cache, cache, cache, cache)

    def of(self, role: str) -> CacheSettings:
        """The cache of one stage model, by its role's value (``"pixel_sr"``)."""
        return getattr(self, role)


@dataclass(frozen=True)
class SpeedSettings:
    """How a stage model runs. The defaults are today's behaviour; only ``fp8_weights`` and a ``cache`` change the numbers.

    docs/PERFORMANCE.md lists what each option guarantees and what it was measured to do.
    """

    attention: str = "sdpa"
    """Attention implementation, one of :data:`ATTENTION_BACKENDS`."""
    compile: bool = False
    """``torch.compile`` each repeated block of the UNet (regional compilation), reused across steps and windows."""
    compile_backend: str = "inductor"
    """The ``torch.compile`` backend, one of :data:`COMPILE_BACKENDS`."""
    fp8_weights: bool = False
    """Store UNet (and T5) weights as float8 e4m3fn, computing in the model's precision: half the weight memory."""
    stream_blocks: bool = False
    """Keep the UNet on the CPU and stream its blocks to the accelerator one at a time (least memory)."""
    split_guidance: bool = False
    """Classifier-free guidance as two passes of one video instead of one batch of two (less activation memory)."""
    cache: StageCaches = StageCaches()
    """Step caching per stage model (:class:`CacheSettings`); off by default."""

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_BACKENDS:
            raise InputError(f"unknown attention backend {self.attention!r}; choose one of {', '.join(ATTENTION_BACKENDS)}")
        if self.compile_backend not in COMPILE_BACKENDS:
            raise InputError(f"unknown compile backend {self.compile_backend!r}; choose one of {', '.join(COMPILE_BACKENDS)}")
