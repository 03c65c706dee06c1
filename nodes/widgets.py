"""Input declarations shared by the nodes: every widget has explicit bounds and a tooltip."""

from __future__ import annotations

from typing import Any

from show1_core import DTYPES, MAX_GUIDANCE, PAPER_SETTINGS, EncoderKind, MemoryPolicy

from .types import EMBEDS_TYPE, ENCODER_TITLE

Input = tuple[Any, dict[str, Any]]

MAX_SEED = 0xFFFFFFFFFFFFFFFF
MAX_STEPS = 1000
MAX_SIZE = 4096
MAX_FRAMES = 256
MAX_FPS = 240.0
PRECISIONS = ["auto", *DTYPES]
"""``auto``: fp16 on an accelerator (as the original runs), fp32 on the CPU."""


def int_input(default: int, minimum: int, maximum: int, tooltip: str, step: int = 1) -> Input:
    """An INT widget."""
    return ("INT", {"default": default, "min": minimum, "max": maximum, "step": step, "tooltip": tooltip})


def float_input(default: float, minimum: float, maximum: float, step: float, tooltip: str) -> Input:
    """A FLOAT widget."""
    return ("FLOAT", {"default": default, "min": minimum, "max": maximum, "step": step, "tooltip": tooltip})


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
    return int_input(
        PAPER_SETTINGS.seed,
        0,
        MAX_SEED,
        "Seed of the stage's noise; the same seed and inputs give the same result. Default: the original's example seed.",
    )


def steps_input(default: int) -> Input:
    """A denoising-step count."""
    return int_input(default, 1, MAX_STEPS, f"Denoising steps (the paper uses {default}).")


def guidance_input(default: float) -> Input:
    """A classifier-free guidance scale (guidance applies above 1)."""
    return float_input(
        default, 0.0, MAX_GUIDANCE, 0.1, f"Classifier-free guidance scale (the paper uses {default}; 1 or less disables guidance)."
    )


def fps_input(default: float, tooltip: str) -> Input:
    """A frame rate in frames per second."""
    return float_input(default, 0.01, MAX_FPS, 0.01, tooltip)


def size_input(default: int, what: str, multiple: int = 8) -> Input:
    """A width or height in pixels."""
    return int_input(default, multiple, MAX_SIZE, f"{what} in pixels (a multiple of {multiple}; the paper uses {default}).", step=multiple)


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
    return float_input(
        paper.strength,
        0.01,
        1.0,
        0.01,
        f"How far the input is re-noised before refining (the paper uses {paper.strength}; the model was trained on "
        "timesteps up to 900, so values near 1 leave its range).",
    )


def stage4_sampling_inputs() -> dict[str, Input]:
    """Steps, strength, guidance and seed of the expert latent SR stage."""
    paper = PAPER_SETTINGS.latent_sr
    return {
        "steps": steps_input(paper.steps),
        "strength": strength_input(),
        "guidance": guidance_input(paper.guidance),
        "seed": seed_input(),
    }
