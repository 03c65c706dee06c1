"""A plan as a table, and its FLOPs as seconds at named GPUs' peaks."""

from __future__ import annotations

from ..footprint import GIB
from .planner import CascadePlan

DENSE_BF16_TFLOPS = {"H100 SXM": 989.4, "A100": 312.0, "RTX 4090": 165.2}
"""Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from NVIDIA's data sheets (the RTX 4090's with FP16
accumulation; with FP32 accumulation, as PyTorch uses, it is half)."""

LABELS = {
    "text_t5": "T5-XXL prompt (stages 1-3)",
    "keyframes": "1 keyframes",
    "interpolation": "2 interpolation",
    "first_frame": "3 first frame (IF-II-L)",
    "pixel_sr": "3 pixel SR windows",
    "text_clip": "CLIP prompt (stage 4)",
    "latent_sr": "4 latent SR (UNet + VAE)",
}


def _gib(count: int) -> str:
    return f"{count / GIB:.2f}"


def plan_table(plan: CascadePlan) -> str:
    """One row per part: GiB of weights and activations on the accelerator, its peak, host GiB and TFLOP."""
    rows = ["| part | weights GiB | activations GiB | accelerator GiB | host GiB | TFLOP |", "|---|---:|---:|---:|---:|---:|"]
    for part in plan.parts:
        cells = (_gib(part.weights), _gib(part.activations), _gib(part.accelerator), _gib(part.host), f"{part.flops / 1e12:,.1f}")
        rows.append(f"| {LABELS[part.name]} | " + " | ".join(cells) + " |")
    peak = (_gib(plan.peak_accelerator), _gib(plan.peak_host), f"{plan.flops / 1e12:,.1f}")
    rows.append(f"| **peak / total** | | | **{peak[0]}** | **{peak[1]}** | **{peak[2]}** |")
    return "\n".join(rows)


def physical_limit(plan: CascadePlan) -> str:
    """The run's FLOPs as seconds at each named GPU's dense bf16 peak: the fastest any implementation could go."""
    return ", ".join(f"{name} {plan.flops / (tflops * 1e12):.1f} s" for name, tflops in DENSE_BF16_TFLOPS.items())
