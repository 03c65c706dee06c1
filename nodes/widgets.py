"""Input declarations shared by the nodes, and their ``VALIDATE_INPUTS``.

Every widget has explicit bounds (a number's from ``show1_core.host.LIMITS``) and a tooltip.
ComfyUI calls a node's ``VALIDATE_INPUTS`` when a prompt is queued, before any node runs, with
the values of the inputs its signature names, and skips its own min/max check for those
inputs: :func:`widget_problems` applies show1_core's checks of the same ranges, which also
catch what min/max cannot (NaN; steps with a strength that leaves no step to run). A linked
input arrives as ``None`` and is checked when the node runs. Checks across nodes (the keyframe
size against the pixel SR model's size step, a noise level against the noising scheduler of
the model wired in) cannot be made here: ``VALIDATE_INPUTS`` sees neither other nodes' widgets
nor the models; the stage's check runs with them when the node runs, before its first step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, TypeVar

from show1_core import DTYPES, PAPER_SETTINGS, EncoderKind, MemoryPolicy
from show1_core.host import LIMITS, Problem

from .types import EMBEDS_TYPE, ENCODER_TITLE

Input = tuple[Any, dict[str, Any]]
S = TypeVar("S")

PRECISIONS = ["auto", *DTYPES]
"""``auto``: fp16 on an accelerator (as the original runs), fp32 on the CPU."""


def int_input(default: int, minimum: int, maximum: int, tooltip: str, step: int = 1) -> Input:
    """An INT widget."""
    return ("INT", {"default": default, "min": minimum, "max": maximum, "step": step, "tooltip": tooltip})


def float_input(default: float, minimum: float, maximum: float, step: float, tooltip: str) -> Input:
    """A FLOAT widget."""
    return ("FLOAT", {"default": default, "min": minimum, "max": maximum, "step": step, "tooltip": tooltip})


def limited_input(setting: str, default: float, tooltip: str, step: float = 1) -> Input:
    """A number widget whose min and max are the range ``show1_core.host.LIMITS`` declares for ``setting``.

    An excluded lower end (a frame rate above 0) becomes the first step above it; a whole-number setting with a
    step above 1 (sizes in multiples of 8) starts at its first multiple.
    """
    limit = LIMITS[setting]
    if limit.whole:
        low = -(-int(limit.low) // int(step)) * int(step)  # the first multiple of step in range
        return int_input(int(default), low, int(limit.high), tooltip, step=int(step))
    return float_input(default, limit.low + step if limit.low_open else limit.low, limit.high, step, tooltip)


def combo_input(options: list[str], default: str, tooltip: str) -> Input:
    """A drop-down (combo) widget."""
    return (options, {"default": default, "tooltip": tooltip})


def socket(type_name: str, tooltip: str) -> Input:
    """A link-only input."""
    return (type_name, {"tooltip": tooltip})


def model_and_embeds(model_type: str, model_tooltip: str, kind: EncoderKind) -> dict[str, Input]:
    """The ``model`` socket of a stage node and its ``t5_embeds`` or ``clip_embeds`` socket."""
    return {
        "model": socket(model_type, model_tooltip),
        f"{kind.value}_embeds": socket(EMBEDS_TYPE[kind], f"{ENCODER_TITLE[kind]} embeddings from Show-1 Text Encode."),
    }


def seed_input() -> Input:
    """The ``seed`` widget (ComfyUI adds its control-after-generate widget by the name)."""
    return limited_input(
        "seed",
        PAPER_SETTINGS.seed,
        "Seed of the stage's noise; the same seed and inputs give the same result. Default: the original's example seed.",
    )


def steps_input(stage: str, default: int) -> Input:
    """A stage's denoising-step count."""
    return limited_input(f"{stage}.steps", default, f"Denoising steps (the paper uses {default}).")


def guidance_input(stage: str, default: float) -> Input:
    """A stage's classifier-free guidance scale (guidance applies above 1)."""
    return limited_input(
        f"{stage}.guidance",
        default,
        step=0.1,
        tooltip=f"Classifier-free guidance scale (the paper uses {default}; 1 or less disables guidance).",
    )


def fps_input(default: float, tooltip: str) -> Input:
    """A frame rate in frames per second."""
    return limited_input("keyframes.fps", default, tooltip, step=0.01)


def size_input(setting: str, default: int, what: str, multiple: int = 8) -> Input:
    """A width or height in pixels, in multiples of ``multiple``, in the range of ``setting`` (``latent_sr.width``)."""
    return limited_input(setting, default, f"{what} in pixels (a multiple of {multiple}; the paper uses {default}).", step=multiple)


def precision_input() -> Input:
    """The precision the weights are loaded in."""
    return combo_input(
        PRECISIONS,
        "auto",
        "Weight precision. auto: fp16 on a GPU (as the original runs), fp32 on the CPU. "
        "Use bf16 or fp32 if a stage reports NaN/inf values (fp16 overflow).",
    )


def memory_input() -> Input:
    """The memory policy of a loaded model."""
    return combo_input(
        [p.value for p in MemoryPolicy],
        MemoryPolicy.BALANCED.value,
        "low-vram: the model leaves the GPU right after its stage (other models stay where ComfyUI put them), the VAE works one "
        "frame at a time and the T5 encoder streams block by block. balanced: ComfyUI keeps the model until it needs "
        "the memory; T5 streams. all-resident: like balanced, but the T5 encoder runs whole and the VAE takes 32 "
        "frames at once (fastest, most memory).",
    )


def strength_input() -> Input:
    """How far stage 4 re-noises its input."""
    paper = PAPER_SETTINGS.latent_sr
    return limited_input(
        "latent_sr.strength",
        paper.strength,
        step=0.01,
        tooltip=f"How far the input is re-noised before refining (the paper uses {paper.strength}; the model was trained on "
        "timesteps up to 900, so values near 1 leave its range).",
    )


def stage4_sampling_inputs() -> dict[str, Input]:
    """Steps, strength, guidance and seed of the expert latent SR stage."""
    paper = PAPER_SETTINGS.latent_sr
    return {
        "steps": steps_input("latent_sr", paper.steps),
        "strength": strength_input(),
        "guidance": guidance_input("latent_sr", paper.guidance),
        "seed": seed_input(),
    }


def widget_problems(check: Callable[[S], list[Problem]], defaults: S, **widgets: object) -> list[str]:
    """What ``check`` finds in ``defaults`` with the given widget values (``None``: linked, left to run time)."""
    given = {name: value for name, value in widgets.items() if value is not None}
    return [str(problem) for problem in check(replace(defaults, **given))]


def verdict(problems: list[str]) -> bool | str:
    """``True``, or the problems as ComfyUI shows a failed ``VALIDATE_INPUTS``."""
    return "; ".join(problems) or True
