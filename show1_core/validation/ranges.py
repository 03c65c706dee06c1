"""The range of every stage setting, checked without any model.

Each ``*_problems`` function returns every problem of one stage's settings as a
:class:`Problem` (empty: the settings are usable as far as can be told without the model),
so the command line, the Python cascade, the stage functions and the ComfyUI nodes' own
validation refuse the same values with the same words. What needs the model (size steps,
noise levels of a given noising scheduler, memory) is checked in :mod:`show1_core.validation`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

from ..errors import InvalidSettingsError
from ..settings import (
    CascadeSettings,
    FirstFrameSettings,
    InterpolationSettings,
    KeyframeSettings,
    LatentSRSettings,
    PixelSRSettings,
)

MAX_SIZE = 4096
"""Largest width or height of any stage's frames, in pixels (the paper's largest is 576)."""
MAX_FRAMES = 256
"""Most keyframes, and the longest pixel SR window."""
MAX_FRAMES_BETWEEN = 15
MAX_STEPS = 1000
"""The released schedulers' training timesteps: more steps repeat timesteps."""
MAX_GUIDANCE = 100.0
MAX_NOISE_LEVEL = 999
"""Highest condition noise level: the released noising schedulers have 1000 levels, 0 to 999."""
MAX_FPS = 240.0
MAX_LORA_STRENGTH = 10.0
"""Largest magnitude of a motion LoRA's strength (1: as trained; negative: the opposite motion)."""


@dataclass(frozen=True)
class Problem:
    """One setting that cannot be used: which (``pixel_sr.noise_level``; ``None`` for a whole stage) and why."""

    setting: str | None
    message: str

    def __str__(self) -> str:
        return self.message if self.setting is None else f"{self.setting} {self.message}"


def raise_problems(problems: Sequence[Problem]) -> None:
    """Raise one :class:`InvalidSettingsError` naming every problem, if there are any."""
    if problems:
        raise InvalidSettingsError([(p.setting, p.message) for p in problems])


MAX_SEED = 2**64 - 1
"""Largest seed of a PyTorch generator."""


def _is_whole(value: object) -> bool:
    """An ``int`` (also numpy's), not a ``bool``: ``2.0`` is refused rather than failing later in ``range``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def whole(setting: str, value: object, low: int, high: int | None = None, why: str = "") -> list[Problem]:
    """``value`` must be a whole number from ``low`` to ``high`` (no upper end: ``None``)."""
    if _is_whole(value) and low <= value and (high is None or value <= high):
        return []
    bounds = f"of at least {low}" if high is None else f"from {low} to {high}"
    return [Problem(setting, f"must be a whole number {bounds}{why}, got {value!r}")]


def number(setting: str, value: object, low: float, high: float, low_open: bool = False, why: str = "") -> list[Problem]:
    """``value`` must be a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        if (low < value if low_open else low <= value) and value <= high:
            return []
    bounds = f"more than {low:g} and at most {high:g}" if low_open else f"from {low:g} to {high:g}"
    return [Problem(setting, f"must be a number {bounds}{why}, got {value!r}")]


@dataclass(frozen=True)
class Limit:
    """The range of one setting: whole numbers (or finite numbers) from ``low`` to ``high`` (``None``: no upper end)."""

    low: float
    high: float | None
    whole: bool = True
    low_open: bool = False
    """``low`` itself is excluded (a frame rate, a strength)."""
    why: str = ""

    def problems(self, setting: str, value: object) -> list[Problem]:
        """``value`` checked against this range, named ``setting``."""
        if self.whole:
            return whole(setting, value, int(self.low), None if self.high is None else int(self.high), self.why)
        return number(setting, value, self.low, math.inf if self.high is None else self.high, self.low_open, self.why)


_STEPS = Limit(1, MAX_STEPS)
_GUIDANCE = Limit(0.0, MAX_GUIDANCE, whole=False, why=" (1 or less: no guidance)")
_NOISE_LEVEL = Limit(0, MAX_NOISE_LEVEL, why=" (a level of the noising scheduler)")
_SIZE = Limit(1, MAX_SIZE)
LIMITS: dict[str, Limit] = {
    "seed": Limit(0, MAX_SEED),
    "keyframes.num_frames": Limit(1, MAX_FRAMES),
    "keyframes.width": _SIZE,
    "keyframes.height": _SIZE,
    "keyframes.steps": _STEPS,
    "keyframes.guidance": _GUIDANCE,
    "keyframes.fps": Limit(0.0, MAX_FPS, whole=False, low_open=True),
    "interpolation.frames_between": Limit(1, MAX_FRAMES_BETWEEN),
    "interpolation.steps": _STEPS,
    "interpolation.guidance": _GUIDANCE,
    "interpolation.window_batch": Limit(1, None, why=" (or None: all windows)"),
    "first_frame.steps": _STEPS,
    "first_frame.guidance": _GUIDANCE,
    "first_frame.noise_level": _NOISE_LEVEL,
    "pixel_sr.scale": Limit(1, None),
    "pixel_sr.steps": _STEPS,
    "pixel_sr.guidance": _GUIDANCE,
    "pixel_sr.noise_level": _NOISE_LEVEL,
    "pixel_sr.window": Limit(2, MAX_FRAMES),
    "latent_sr.width": _SIZE,
    "latent_sr.height": _SIZE,
    "latent_sr.steps": _STEPS,
    "latent_sr.strength": Limit(0.0, 1.0, whole=False, low_open=True),
    "latent_sr.guidance": _GUIDANCE,
    "latent_sr.eta": Limit(0.0, 1.0, whole=False),
    "latent_sr.vae_batch": Limit(1, None),
    "latent_sr.frame_window": Limit(0, None, why=" (0: all frames at once)"),
    "motion_lora.strength": Limit(-MAX_LORA_STRENGTH, MAX_LORA_STRENGTH, whole=False),
    "cache.threshold": Limit(0.0, 1.0, whole=False, why=" (0: skip nothing)"),
    "cache.interval": Limit(1, MAX_STEPS, why=" (1: skip nothing)"),
    "cache.start": Limit(0, MAX_STEPS),
    "cache.end": Limit(1, MAX_STEPS, why=" (or None: to the last step)"),
}
"""Every setting's range, declared once: the checks below, the command line (which runs them) and the
ComfyUI widgets' min/max (``nodes/widgets.py``) all read it."""


def check(setting: str, value: object) -> list[Problem]:
    """``value`` checked against the range :data:`LIMITS` declares for ``setting``."""
    return LIMITS[setting].problems(setting, value)


def seed_problems(seed: object) -> list[Problem]:
    """A seed: a whole number from 0 to :data:`MAX_SEED` (``1.5``, ``"7"``, ``True`` and NaN are refused)."""
    return check("seed", seed)


def lora_strength_problems(strength: object, setting: str = "motion LoRA strength") -> list[Problem]:
    """A motion LoRA's strength: a finite number from -:data:`MAX_LORA_STRENGTH` to :data:`MAX_LORA_STRENGTH`."""
    return LIMITS["motion_lora.strength"].problems(setting, strength)


def frame_size_problems(stage: str, width: object, height: object) -> list[Problem]:
    """A frame size: whole numbers of pixels from 1 to :data:`MAX_SIZE`."""
    return check(f"{stage}.width", width) + check(f"{stage}.height", height)


def keyframe_problems(settings: KeyframeSettings) -> list[Problem]:
    """Stage 1: frame count, size, steps, guidance and frame rate."""
    return [
        *check("keyframes.num_frames", settings.num_frames),
        *frame_size_problems("keyframes", settings.width, settings.height),
        *check("keyframes.steps", settings.steps),
        *check("keyframes.guidance", settings.guidance),
        *check("keyframes.fps", settings.fps),
    ]


def interpolation_problems(settings: InterpolationSettings) -> list[Problem]:
    """Stage 2: frames between each pair, steps, guidance and windows per batch."""
    problems = [
        *check("interpolation.frames_between", settings.frames_between),
        *check("interpolation.steps", settings.steps),
        *check("interpolation.guidance", settings.guidance),
    ]
    if settings.window_batch is not None:
        problems += check("interpolation.window_batch", settings.window_batch)
    return problems


def first_frame_problems(settings: FirstFrameSettings) -> list[Problem]:
    """Stage 3's IF-II-L frame: steps, guidance and condition noise level."""
    return [
        *check("first_frame.steps", settings.steps),
        *check("first_frame.guidance", settings.guidance),
        *check("first_frame.noise_level", settings.noise_level),
    ]


def pixel_sr_problems(settings: PixelSRSettings) -> list[Problem]:
    """Stage 3: scale, steps, guidance, noise level, and windows that share a frame."""
    window = check("pixel_sr.window", settings.window)
    problems = [
        *check("pixel_sr.scale", settings.scale),
        *check("pixel_sr.steps", settings.steps),
        *check("pixel_sr.guidance", settings.guidance),
        *check("pixel_sr.noise_level", settings.noise_level),
        *window,
    ]
    if not window:
        problems += whole(
            "pixel_sr.stride",
            settings.stride,
            1,
            settings.window - 1,
            why=f" (smaller than the window of {settings.window}, so neighbouring windows share a frame)",
        )
    return problems


def latent_sr_problems(settings: LatentSRSettings) -> list[Problem]:
    """Stage 4: size, steps, strength (and that it leaves a step to run), guidance, eta and frame windows."""
    problems = [
        *frame_size_problems("latent_sr", settings.width, settings.height),
        *check("latent_sr.steps", settings.steps),
        *check("latent_sr.strength", settings.strength),
        *check("latent_sr.guidance", settings.guidance),
        *check("latent_sr.eta", settings.eta),
        *check("latent_sr.vae_batch", settings.vae_batch),
        *check("latent_sr.frame_window", settings.frame_window),
    ]
    names = {p.setting for p in problems}
    if settings.frame_window and not names & {"latent_sr.frame_window"}:
        problems += whole(
            "latent_sr.frame_overlap",
            settings.frame_overlap,
            0,
            settings.frame_window - 1,
            why=f" (smaller than frame_window {settings.frame_window})",
        )
    if not names & {"latent_sr.steps", "latent_sr.strength"} and int(settings.steps * settings.strength) < 1:
        problems.append(
            Problem(
                "latent_sr.strength",
                f"{settings.strength} with {settings.steps} steps leaves no step to run; use a strength of at least "
                f"{math.ceil(100 / settings.steps) / 100:g} or more steps",
            )
        )
    return problems


def settings_problems(settings: CascadeSettings, stages: int = 4, first_frame_model: bool = True) -> list[Problem]:
    """Every problem of the stages that will run (the first ``stages``), including what one stage asks of the next."""
    kf = settings.keyframes
    problems = seed_problems(settings.seed) + keyframe_problems(kf)
    if stages >= 2:
        problems += interpolation_problems(settings.interpolation)
        if kf.num_frames == 1:
            why = "must be at least 2 when interpolation runs (it fills the frames between keyframes), got 1"
            problems.append(Problem("keyframes.num_frames", why))
    if stages >= 3:
        problems += first_frame_problems(settings.first_frame) if first_frame_model else []
        problems += pixel_sr_problems(settings.pixel_sr)
        scale = settings.pixel_sr.scale
        for side in ("width", "height"):
            value = getattr(kf, side)
            if _is_whole(value) and _is_whole(scale) and value <= MAX_SIZE < value * scale:
                problems.append(
                    Problem(f"keyframes.{side}", f"{value} upscaled {scale}x by pixel SR is {value * scale}, more than {MAX_SIZE} pixels")
                )
    if stages >= 4:
        problems += latent_sr_problems(settings.latent_sr)
    return problems
