"""Benchmark the Show-1 cascade: time and peak accelerator memory per stage.

    python bench/run_bench.py --mode released [--policies all-resident,balanced,low-vram] [--steps-scale 1.0]
    python bench/run_bench.py --mode tiny

``released`` builds every model at the released size with random weights (no download;
needs a GPU and ~40 GB of host RAM) and runs the paper's full cascade (29 frames,
576x320) once per memory policy. Memory is reported as a ratio to the ``all-resident``
run of the same invocation; interpolation is also timed with its windows batched against
one window at a time (the original's loop). ``tiny`` runs the tiny random model set on
the CPU at the demo size, on any machine.

Random weights make noise; the figures measure the computation, not the pictures. The
benchmark runs in bf16 by default (fp16 can overflow with random weights).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from show1_core.cascade import CascadeCheckpoints, Show1Cascade
from show1_core.cli import demo_settings
from show1_core.loading import KNOWN_CHECKPOINTS, Stage, StageModel
from show1_core.loading.components import SCHEDULERS
from show1_core.loading.registry import T5_CHECKPOINT
from show1_core.loading.weights import parse_dtype
from show1_core.memory import MemoryPolicy, peak_memory_bytes, reset_peak_memory
from show1_core.settings import PAPER_SETTINGS
from show1_core.stages import PromptEmbeds, interpolate_frames
from show1_core.text import EmbeddingCache, EncoderKind, load_tokenizer
from show1_core.tiny import write_tiny_models

PROMPT = "a panda playing guitar on the beach at sunset"
RESULTS = Path(__file__).resolve().parent / "results"


class StageClock:
    """Wall time and peak accelerator memory of each step the cascade announces."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rows: list[dict] = []
        self._name: str | None = None
        self._start = 0.0

    def start(self, name: str) -> None:
        """Close the running step and start ``name``."""
        self.stop()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        reset_peak_memory(self.device)
        self._name, self._start = name, time.perf_counter()

    def stop(self) -> None:
        """Record the running step, if any."""
        if self._name is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        peak = peak_memory_bytes(self.device)
        self.rows.append({"step": self._name, "seconds": time.perf_counter() - self._start, "peak_gib": None if peak is None else peak / 2**30})
        self._name = None


def _random_model(cls, config: dict, dtype: torch.dtype) -> torch.nn.Module:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = cls.from_config(config) if hasattr(cls, "from_config") else cls(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval().requires_grad_(False)


def released_models(dtype: torch.dtype) -> dict[Stage, StageModel]:
    """Every stage model at its released size, randomly initialised on the CPU."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from show1_core.models import Show1UNet

    models = {}
    for checkpoint in KNOWN_CHECKPOINTS.values():
        config = checkpoint.expected_config("unet")
        unet_cls = UNet2DConditionModel if config["down_block_types"][0].endswith("2D") else Show1UNet
        schedulers = {
            name: SCHEDULERS[cfg["_class_name"]].from_config(cfg)
            for name in checkpoint.components
            if name.endswith("scheduler")
            for cfg in [checkpoint.expected_config(name)]
        }
        model = StageModel(checkpoint.stage, _random_model(unet_cls, config, dtype), schedulers["scheduler"])
        model.noising_scheduler = schedulers.get("image_noising_scheduler")
        if checkpoint.stage == Stage.LATENT_SR:
            model.vae = _random_model(AutoencoderKL, checkpoint.expected_config("vae"), dtype)
        models[checkpoint.stage] = model
    return models


def released_text_loaders(dtype: torch.dtype, tokenizers: Path) -> dict:
    """Random T5-XXL and CLIP text encoders at the released sizes, with the tiny set's tokenizers."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    t5 = _random_model(T5EncoderModel, T5Config.from_dict(T5_CHECKPOINT.expected_config("text_encoder")), dtype)
    clip = _random_model(CLIPTextModel, CLIPTextConfig.from_dict(KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("text_encoder")), dtype)
    return {
        EncoderKind.T5: lambda: (load_tokenizer(tokenizers / "show-1-base" / "tokenizer", EncoderKind.T5), t5),
        EncoderKind.CLIP: lambda: (load_tokenizer(tokenizers / "show-1-sr2" / "tokenizer", EncoderKind.CLIP), clip),
    }


def scaled_steps(settings, scale: float):
    """The paper settings with every step count multiplied by ``scale`` (at least 1)."""
    def scale_stage(stage):
        return dataclasses.replace(stage, steps=max(1, round(stage.steps * scale)))

    return dataclasses.replace(
        settings, **{name: scale_stage(getattr(settings, name)) for name in ("keyframes", "interpolation", "first_frame", "pixel_sr", "latent_sr")}
    )


def run_policy(policy: str, device: torch.device, dtype: torch.dtype, settings, models, text_loaders, checkpoints) -> list[dict]:
    """One full cascade under ``policy``; returns the per-step rows."""
    clock = StageClock(device)
    cascade = Show1Cascade(checkpoints, device, dtype, policy, EmbeddingCache(), models=models, text_loaders=text_loaders)
    cascade.run(PROMPT, settings, on_start=clock.start, on_stage=lambda *a: clock.stop())
    clock.stop()
    for model in models.values():
        for module in model.modules():
            module.to("cpu")
    return clock.rows


def interpolation_batching(model: StageModel, device: torch.device, dtype: torch.dtype, settings, width: int) -> dict:
    """Seconds for stage 2 with all windows batched vs one window at a time (the original's loop)."""
    kf = settings.keyframes
    frames = torch.rand(1, 3, kf.num_frames, kf.height, kf.width, device=device, dtype=dtype) * 2 - 1
    embeds = PromptEmbeds(torch.randn(1, 77, width, dtype=dtype), torch.randn(1, 77, width, dtype=dtype))
    model.unet.to(device)
    timings = {}
    for label, batch in (("one_window_at_a_time", 1), ("batched", None)):
        run = dataclasses.replace(settings.interpolation, window_batch=batch)
        interpolate_frames(model, frames, embeds, dataclasses.replace(run, steps=1))  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        interpolate_frames(model, frames, embeds, run)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings[label] = time.perf_counter() - start
    model.unet.to("cpu")
    timings["speedup"] = timings["one_window_at_a_time"] / timings["batched"]
    return timings


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(results: dict) -> str:
    lines = []
    baseline = results["policies"].get(MemoryPolicy.ALL_RESIDENT.value)
    base_peak = max((r["peak_gib"] or 0) for r in baseline) if baseline else None
    for policy, rows in results["policies"].items():
        peaks = [r["peak_gib"] for r in rows if r["peak_gib"] is not None]
        total = sum(r["seconds"] for r in rows)
        memory = f", peak {max(peaks):.2f} GiB" if peaks else ""
        ratio = f" ({max(peaks) / base_peak:.2f}x all-resident)" if peaks and base_peak else ""
        lines.append(f"\n### {policy}: {total:.1f} s total{memory}{ratio}\n")
        lines.append("| step | seconds | peak GiB |\n|---|---|---|")
        lines += [f"| {r['step']} | {r['seconds']:.2f} | {_gib(r['peak_gib'])} |" for r in rows]
    b = results["interpolation_batching"]
    lines.append(
        f"\nInterpolation windows batched: {b['batched']:.2f} s vs one at a time {b['one_window_at_a_time']:.2f} s "
        f"({b['speedup']:.2f}x)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write JSON and Markdown reports to bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["released", "tiny"], default="tiny")
    parser.add_argument("--policies", default=",".join(p.value for p in MemoryPolicy))
    parser.add_argument("--precision", default="bf16", choices=["fp16", "bf16", "fp32"])
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every stage's step count (quick checks)")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.mode == "released" else "cpu")
    if args.mode == "released" and not torch.cuda.is_available():
        parser.error("--mode released needs a CUDA GPU")
    dtype = parse_dtype(args.precision) if args.mode == "released" else torch.float32
    policies = [MemoryPolicy(p.strip()).value for p in args.policies.split(",")] if args.mode == "released" else ["balanced"]
    results: dict = {"mode": args.mode, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "policies": {}}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        tiny = write_tiny_models(Path(tmp))
        checkpoints = CascadeCheckpoints.resolve(Path(tmp), allow_download=False)
        if args.mode == "released":
            settings = scaled_steps(PAPER_SETTINGS, args.steps_scale)
            models, loaders, width = released_models(dtype), released_text_loaders(dtype, Path(tmp)), 4096
        else:
            settings = demo_settings()
            models, loaders, width = None, None, 32
        for policy in policies:
            results["policies"][policy] = run_policy(policy, device, dtype, settings, models or {}, loaders, checkpoints)
        interp = (models or {}).get(Stage.INTERPOLATION)
        if interp is None:
            from show1_core.loading import load_stage_model

            interp = load_stage_model(tiny["show-1-interpolation"], Stage.INTERPOLATION)
        results["interpolation_batching"] = interpolation_batching(interp, device, dtype, settings, width)
    results["host_peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2))
    report = f"## {args.mode} on {results['device']}\n" + _table(results)
    stem.with_suffix(".md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
