"""Benchmark the Show-1 cascade: seconds, peak accelerator memory and peak host memory per stage, for
every memory policy and speed option worth comparing, each against the original's strategy measured
in the same invocation.

    python bench/run_bench.py --mode tiny                  # the tiny model set on the CPU, reduced size (CI)
    python bench/run_bench.py --mode released              # a GPU: released sizes, random weights, paper settings
    python bench/run_bench.py --mode released --dry-run    # the released mode's code on the CPU, toy width, reduced size
    [--configs original,balanced,...] [--precision bf16] [--steps-scale 1.0]

``original`` executes the way the original ``run_inference.py`` does: each model moved to the
accelerator whole for its stage and back to the CPU afterwards (diffusers' model offload), the
T5 encoder whole on the accelerator for the encode, the interpolation windows one after another
and the VAE decoding one frame at a time. Every other configuration is reported as a ratio to it.

``released`` builds every model at its released size with random weights for each configuration
(the same seed, so the same weights; no download; about 23 GiB of host RAM in bf16, T5-XXL
included). Random weights make noise; the figures measure the computation, not the pictures.
bf16 by default (random weights can overflow fp16, which has the same footprint and speed as
the product's fp16). ``tiny`` and ``--dry-run`` run at :data:`REDUCED` (8 keyframes at 16x8 ->
29 frames -> 64x32, one denoising step per stage) so they finish in seconds; ``tiny`` loads the
tiny model set from disk through the cascade's own loaders, ``--dry-run`` builds the released
structures at toy width. On the CPU the benchmark runs on one thread (several threads stall on
each other whenever the machine is busy) and compiles with the ``eager`` backend.

Per step it reports seconds, the peak accelerator memory (``torch.cuda.max_memory_allocated``)
and the peak host memory (the process's VmHWM, reset per step, minus its resident memory before
the configuration's models were built or loaded). Reports land in bench/results/.

The ``cache-*`` configurations (step caching) are compared with ``cache-off``, the same run
without a cache, measured in the same invocation: UNet forwards and attention computations run
per stage model, seconds, and the final video's distance to the uncached one (max abs and PSNR,
computed in float64). They need more than one step per stage: ``tiny`` runs them at
:data:`TINY_CACHE_STEPS` steps per stage, in float64 (so the distance is the cache's alone, not
float32 rounding amplified by stages 1-2), ``released`` at the paper's settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from show1_core.cascade import CascadeCheckpoints, Show1Cascade
from show1_core.errors import InputError
from show1_core.loading import KNOWN_CHECKPOINTS, ModelRole, StageModel
from show1_core.loading.components import SCHEDULERS
from show1_core.loading.registry import T5_CHECKPOINT
from show1_core.loading.weights import parse_dtype
from show1_core.memory import POLICY_SETTINGS, MemoryPolicy, ModelPlacer, PolicySettings, empty_cache, peak_memory_bytes, reset_peak_memory
from show1_core.plan.planner import PlanModels, flops_per_part
from show1_core.plan.report import DENSE_BF16_TFLOPS
from show1_core.settings import (
    PAPER_SETTINGS,
    CacheSettings,
    FirstFrameSettings,
    InterpolationSettings,
    KeyframeSettings,
    LatentSRSettings,
    PixelSRSettings,
    SpeedSettings,
    StageCaches,
)
from show1_core.speed import apply_speed, check_attention_backend, store_in_fp8
from show1_core.text import EmbeddingCache, EncoderKind, load_tokenizer
from show1_core.tiny import tiny_clip_config, tiny_t5_config, tiny_unet_config, tiny_vae_config, write_tiny_models

PROMPT = "a panda playing guitar on the beach at sunset"
RESULTS = Path(__file__).resolve().parent / "results"
GIB = 2**30
REDUCED = dataclasses.replace(
    PAPER_SETTINGS,
    keyframes=KeyframeSettings(width=16, height=8, steps=1),
    interpolation=InterpolationSettings(steps=1),
    first_frame=FirstFrameSettings(steps=1),
    pixel_sr=PixelSRSettings(steps=1),
    latent_sr=LatentSRSettings(width=64, height=32, steps=2, strength=0.5),
)
"""The cascade's shape (8 keyframes, 3 frames between, x4 pixel SR, latent SR) at a size the CPU runs in seconds."""
ORIGINAL_STRATEGY = PolicySettings(
    one_model_at_a_time=True,
    release_after_stage=True,
    free_after_stage=False,
    stream_text_encoder=False,
    vae_frames_per_batch=1,
    vae_tiling=False,
)
"""How the original places models: whole-model offload around each stage, T5 whole, the VAE one frame at a time."""


@dataclasses.dataclass(frozen=True)
class Config:
    """One way of running the cascade."""

    name: str
    what: str
    policy: MemoryPolicy = MemoryPolicy.BALANCED
    speed: SpeedSettings = SpeedSettings()
    policy_settings: PolicySettings | None = None
    one_window_at_a_time: bool = False
    videos: int = 1
    """Videos generated in a row with the same models (compiled configurations: the second reuses the compiled blocks)."""


def configs(device: torch.device) -> list[Config]:
    """Every configuration worth comparing on ``device``, the original's strategy first.

    Compiled configurations use inductor on a GPU and the ``eager`` backend on the CPU (tracing
    and graph reuse without code generation, which takes minutes per model on a CPU).
    """
    backend = "inductor" if device.type == "cuda" else "eager"
    compiled = SpeedSettings(compile=True, compile_backend=backend)
    found = [
        Config(
            "original",
            "the original run_inference.py's strategy",
            MemoryPolicy.LOW_VRAM,
            policy_settings=ORIGINAL_STRATEGY,
            one_window_at_a_time=True,
        ),
        Config("balanced", "show1's default"),
        Config("low-vram", "models leave the accelerator after their stage; VAE one frame, tiled", MemoryPolicy.LOW_VRAM),
        Config("all-resident", "every model stays on the accelerator", MemoryPolicy.ALL_RESIDENT),
        Config("compile", f"balanced + regional torch.compile ({backend})", speed=compiled, videos=2),
        Config("fp8", "balanced + fp8 weights (UNets and T5)", speed=SpeedSettings(fp8_weights=True)),
        Config("split-guidance", "balanced + guidance as two passes of 1", speed=SpeedSettings(split_guidance=True)),
        Config("stream-blocks", "balanced + UNet blocks streamed from the CPU", speed=SpeedSettings(stream_blocks=True)),
        Config(
            "leanest",
            "low-vram + stream-blocks + fp8 + split-guidance",
            MemoryPolicy.LOW_VRAM,
            SpeedSettings(fp8_weights=True, stream_blocks=True, split_guidance=True),
        ),
        Config("fastest", f"all-resident + compile ({backend})", MemoryPolicy.ALL_RESIDENT, compiled, videos=2),
    ]
    for backend_name in ("native", "flash", "sage", "xformers"):
        try:
            check_attention_backend(backend_name, device)
        except InputError:
            continue  # not installed here, or not for this device
        found.append(
            Config(f"attention-{backend_name}", f"balanced + {backend_name} attention", speed=SpeedSettings(attention=backend_name))
        )
    return found


CACHE_BASELINE = "cache-off"
TINY_CACHE_STEPS = 10
"""Steps per stage of the cache configurations in ``tiny`` mode (stage 4: 10 at strength 1): enough to skip some."""
CACHES = {
    "cache-step-0.05": CacheSettings("step", threshold=0.05),
    "cache-step-0.1": CacheSettings("step", threshold=0.1),
    "cache-step-0.2": CacheSettings("step", threshold=0.2),
    "cache-pab-2": CacheSettings("pab", interval=2),
    "cache-pab-3": CacheSettings("pab", interval=3),
    "cache-taylorseer-2": CacheSettings("taylorseer", interval=2),
    "cache-taylorseer-3": CacheSettings("taylorseer", interval=3),
}
"""Each step-caching method at a few settings, for every stage model."""


def cache_configs() -> list[Config]:
    """The step-caching configurations, their baseline (balanced, no cache) first."""
    found = [Config(CACHE_BASELINE, "balanced, no cache (what the cache configurations are compared with)")]
    for name, cache in CACHES.items():
        found.append(
            Config(name, f"balanced + {name.removeprefix('cache-')} step cache", speed=SpeedSettings(cache=StageCaches.every(cache)))
        )
    return found


def _proc_status_gib(field: str) -> float | None:
    try:
        return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 2**20
    except (OSError, AttributeError):
        return None


def reset_host_peak() -> None:
    """Start a new peak-resident-memory measurement of this process (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def host_peak_gib() -> float | None:
    """Peak resident memory of this process since :func:`reset_host_peak`, in GiB (``None`` where /proc is missing)."""
    return _proc_status_gib("VmHWM")


def host_now_gib() -> float | None:
    """Resident memory of this process now, in GiB (``None`` where /proc is missing)."""
    return _proc_status_gib("VmRSS")


class StageClock:
    """Wall time, peak accelerator memory and peak host memory (above ``host_baseline`` GiB) of each step the cascade announces."""

    def __init__(self, device: torch.device, host_baseline: float | None):
        self.device = device
        self.host_baseline = host_baseline
        self.rows: list[dict] = []
        self._name: str | None = None
        self._start = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self, name: str) -> None:
        """Close the running step and start ``name``."""
        self.stop()
        self._sync()
        reset_peak_memory(self.device)
        reset_host_peak()
        self._name, self._start = name, time.perf_counter()

    def stop(self) -> None:
        """Record the running step, if any."""
        if self._name is None:
            return
        self._sync()
        peak, host = peak_memory_bytes(self.device), host_peak_gib()
        self.rows.append(
            {
                "step": self._name,
                "seconds": time.perf_counter() - self._start,
                "peak_gib": None if peak is None else peak / GIB,
                "host_peak_gib": None if host is None or self.host_baseline is None else host - self.host_baseline,
            }
        )
        self._name = None


def _random_model(build: Callable[[], torch.nn.Module], dtype: torch.dtype) -> torch.nn.Module:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return build().eval().requires_grad_(False)
    finally:
        torch.set_default_dtype(previous)


def released_models(dtype: torch.dtype, toy: bool = False) -> dict[ModelRole, StageModel]:
    """Every stage model at its released size (``toy``: released structure at toy width), randomly initialised on the CPU."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from show1_core.models import Show1UNet

    models = {}
    for checkpoint in KNOWN_CHECKPOINTS.values():
        config = checkpoint.expected_config("unet")
        config = tiny_unet_config(config) if toy else config
        unet_cls = UNet2DConditionModel if config["down_block_types"][0].endswith("2D") else Show1UNet
        schedulers = {
            name: SCHEDULERS[cfg["_class_name"]].from_config(cfg)
            for name in checkpoint.components
            if name.endswith("scheduler")
            for cfg in [checkpoint.expected_config(name)]
        }
        model = StageModel(checkpoint.stage, _random_model(lambda: unet_cls.from_config(config), dtype), schedulers["scheduler"])
        model.noising_scheduler = schedulers.get("image_noising_scheduler")
        if checkpoint.stage == ModelRole.LATENT_SR:
            vae_config = tiny_vae_config() if toy else checkpoint.expected_config("vae")
            model.vae = _random_model(lambda: AutoencoderKL.from_config(vae_config), dtype)
        models[checkpoint.stage] = model
    return models


def released_text_encoders(dtype: torch.dtype, toy: bool = False) -> dict[EncoderKind, torch.nn.Module]:
    """Random T5-XXL and CLIP text encoders at the released sizes (``toy``: at toy width)."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    t5 = tiny_t5_config() if toy else T5Config.from_dict(T5_CHECKPOINT.expected_config("text_encoder"))
    clip = tiny_clip_config(49408) if toy else CLIPTextConfig.from_dict(KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("text_encoder"))
    return {
        EncoderKind.T5: _random_model(lambda: T5EncoderModel(t5), dtype),
        EncoderKind.CLIP: _random_model(lambda: CLIPTextModel(clip), dtype),
    }


def weight_storage(dtype: torch.dtype) -> list[dict]:
    """GiB of every released model's weights in ``dtype`` and with fp8 storage, counted on the meta device."""
    from accelerate import init_empty_weights

    def gib(module: torch.nn.Module) -> float:
        return sum(p.numel() * p.element_size() for p in module.parameters()) / GIB

    with init_empty_weights():
        models = {stage.value: m.unet for stage, m in released_models(dtype).items()}
        models.update({f"text_{kind.value}": m for kind, m in released_text_encoders(dtype).items()})
    rows = []
    for name, module in models.items():
        before = gib(module)
        store_in_fp8(module, compute_dtype=dtype)
        rows.append({"model": name, "gib": before, "fp8_gib": gib(module)})
    return rows


def scaled_steps(settings, scale: float):
    """``settings`` with every step count multiplied by ``scale`` (at least 1)."""

    def scale_stage(stage):
        return dataclasses.replace(stage, steps=max(1, round(stage.steps * scale)))

    return dataclasses.replace(
        settings,
        **{name: scale_stage(getattr(settings, name)) for name in ("keyframes", "interpolation", "first_frame", "pixel_sr", "latent_sr")},
    )


@dataclasses.dataclass
class Bench:
    """What every configuration shares: device, precision, settings, and where the models come from."""

    device: torch.device
    dtype: torch.dtype
    settings: object
    checkpoints: CascadeCheckpoints
    random_models: bool = False
    """Build random models at the released size (``toy``: at toy width) instead of loading the tiny set from ``checkpoints``."""
    toy: bool = False

    def cascade(self, config: Config) -> Show1Cascade:
        """A cascade running ``config``, its models built or loaded and sped up before any clock starts."""
        models, loaders = None, None
        if self.random_models:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # every configuration gets the same weights
                built = released_models(self.dtype, self.toy)
                encoders = released_text_encoders(self.dtype, self.toy)
            models = {stage: apply_speed(model, config.speed, self.device) for stage, model in built.items()}
            loaders = {kind: self._loader(kind, encoder) for kind, encoder in encoders.items()}
        cascade = Show1Cascade(
            self.checkpoints,
            self.device,
            self.dtype,
            config.policy,
            EmbeddingCache(),
            models=models,
            text_loaders=loaders,
            speed=config.speed,
        )
        cascade.placer = ModelPlacer(self.device, config.policy, config.policy_settings)
        for stage in ModelRole:
            cascade.model(stage)
        return cascade

    def _loader(self, kind: EncoderKind, encoder: torch.nn.Module):
        """The encoder with the tiny set's tokenizer (random weights only need valid token ids)."""
        folder = self.checkpoints.t5 if kind == EncoderKind.T5 else self.checkpoints.latent_sr
        return lambda: (load_tokenizer(folder / "tokenizer", kind), encoder)

    def run(self, config: Config, counted: bool = False) -> dict:
        """The configuration's cascade, timed step by step (``videos`` times in a row).

        Host memory is counted from before the configuration's models are built or loaded. ``counted``:
        also the UNet work of each stage model (:class:`UNetWork`) and the final video (``"video"``, a tensor).
        """
        settings = self.settings
        if config.one_window_at_a_time:
            settings = dataclasses.replace(settings, interpolation=dataclasses.replace(settings.interpolation, window_batch=1))
        gc.collect()
        baseline = host_now_gib()
        cascade = self.cascade(config)
        work = UNetWork({role: cascade.model(role).unet for role in ModelRole}) if counted else None
        runs = []
        for _ in range(config.videos):
            clock = StageClock(self.device, baseline)
            result = cascade.run(PROMPT, settings, on_start=clock.start, on_stage=lambda *a: clock.stop())
            clock.stop()
            runs.append(clock.rows)
        report = {"what": config.what, "policy": config.policy.value, "speed": dataclasses.asdict(config.speed), "runs": runs}
        if work is not None:
            report["work"], report["video"] = work.counts(), result.final[1]
            work.remove()
        del cascade
        empty_cache(self.device)
        return report


class UNetWork:
    """How much work each stage model's UNet really does: forwards, and attention layers that compute.

    An attention layer's query projection runs only when the layer computes, so its calls count the
    computations whatever a cache hook reuses or extrapolates instead.
    """

    def __init__(self, unets: dict[ModelRole, torch.nn.Module]):
        self._counts = {role.value: {"forwards": 0, "attention": 0} for role in unets}
        self._handles = []
        for role, unet in unets.items():
            self._handles.append(unet.register_forward_pre_hook(self._counter(role.value, "forwards")))
            for module in unet.modules():
                if hasattr(module, "to_q"):
                    self._handles.append(module.to_q.register_forward_pre_hook(self._counter(role.value, "attention")))

    def _counter(self, role: str, what: str) -> Callable:
        def count(*_) -> None:
            self._counts[role][what] += 1

        return count

    def counts(self) -> dict[str, dict[str, int]]:
        """Forwards and attention computations per stage model, so far."""
        return {role: dict(counts) for role, counts in self._counts.items()}

    def remove(self) -> None:
        """Stop counting."""
        for handle in self._handles:
            handle.remove()


def video_distance(video: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Max abs difference and PSNR (dB, over the [-1, 1] range: a peak-to-peak of 2), computed in float64."""
    difference = video.double() - reference.double()
    mse = difference.square().mean().item()
    return {"max_abs": difference.abs().max().item(), "psnr_db": float("inf") if mse == 0 else 10 * math.log10(4 / mse)}


def cache_steps(steps: int):
    """The cache configurations' tiny settings: :data:`REDUCED`'s shape with 4 keyframes at 8x8 (13 frames, 2 pixel-SR
    windows, 32x32), ``steps`` steps in every stage (stage 4 at strength 1, so it runs them all)."""
    stages = {name: dataclasses.replace(getattr(REDUCED, name), steps=steps) for name in ("interpolation", "first_frame", "pixel_sr")}
    return dataclasses.replace(
        REDUCED,
        keyframes=dataclasses.replace(REDUCED.keyframes, num_frames=4, width=8, height=8, steps=steps),
        latent_sr=dataclasses.replace(REDUCED.latent_sr, width=32, height=32, steps=steps, strength=1.0),
        **stages,
    )


def compare_caches(bench: Bench, chosen: list[Config]) -> dict:
    """Each cache configuration against ``cache-off`` run just before it: work per stage model, seconds, distance of the video."""
    base = bench.run(cache_configs()[0], counted=True)
    reference = base.pop("video")
    reports = {CACHE_BASELINE: base}
    for config in chosen:
        started = time.perf_counter()
        report = bench.run(config, counted=True)
        report["distance"] = video_distance(report.pop("video"), reference)
        reports[config.name] = report
        print(f"{config.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return reports


STEP_PARTS = {
    "text_t5": ("text_t5",),
    "keyframes": ("keyframes",),
    "interpolated": ("interpolation",),
    "pixel_sr": ("first_frame", "pixel_sr"),
    "text_clip": ("text_clip",),
    "latent_sr": ("latent_sr",),
}
"""The parts of a plan (show1_core.plan) each timed step of the benchmark runs."""


def planned_tflop(bench: Bench, real: bool) -> dict[str, float]:
    """TFLOP of each timed step, counted on the meta device for the models the benchmark runs (no option changes them):
    the released models, or the tiny set's folders."""
    if real:
        models = PlanModels.released(list(ModelRole), bench.dtype, SpeedSettings())
    else:
        folders = {role: getattr(bench.checkpoints, role.value) for role in ModelRole}
        models = PlanModels.of_folders(folders, bench.checkpoints.t5, bench.dtype, SpeedSettings())
    flops = flops_per_part(models, bench.settings, 4, POLICY_SETTINGS[MemoryPolicy.BALANCED])
    return {step: sum(flops[part] for part in parts) / 1e12 for step, parts in STEP_PARTS.items()}


def _share_of_peak(device: str) -> float | None:
    """The dense bf16 peak of a GPU this benchmark knows by name (TFLOP/s), else ``None``."""
    return next((tflops for name, tflops in DENSE_BF16_TFLOPS.items() if name.split()[0] in device), None)


def _peak(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return max(values) if values else None


def _summary(rows: list[dict]) -> dict:
    return {"seconds": sum(r["seconds"] for r in rows), "peak_gib": _peak(rows, "peak_gib"), "host_peak_gib": _peak(rows, "host_peak_gib")}


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}x"


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(results: dict) -> str:
    """The Markdown report: every configuration against the original's strategy, then each one's steps."""
    reports = results["configs"]
    base = _summary(reports["original"]["runs"][0]) if "original" in reports else {}
    lines = [
        "| configuration | video | seconds | speed-up vs original | peak accelerator GiB | vs original | peak host GiB | vs original |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, report in reports.items():
        for index, rows in enumerate(report["runs"], 1):
            s = _summary(rows)
            speedup = "-" if not base else f"{base['seconds'] / s['seconds']:.2f}x"
            lines.append(
                f"| {name} | {index} | {s['seconds']:.2f} | {speedup} | {_gib(s['peak_gib'])} "
                f"| {_ratio(s['peak_gib'], base.get('peak_gib'))} "
                f"| {_gib(s['host_peak_gib'])} | {_ratio(s['host_peak_gib'], base.get('host_peak_gib'))} |"
            )
    lines.append("\nSeconds per step (first video):\n")
    steps = list(dict.fromkeys(r["step"] for report in reports.values() for r in report["runs"][0]))
    lines.append("| configuration | " + " | ".join(steps) + " |")
    lines.append("|---" * (len(steps) + 1) + "|")
    for name, report in reports.items():
        seconds = {r["step"]: r["seconds"] for r in report["runs"][0]}
        lines.append(f"| {name} | " + " | ".join(f"{seconds[s]:.2f}" if s in seconds else "-" for s in steps) + " |")
    planned = results.get("planned_tflop")
    if planned:
        peak = _share_of_peak(results["device"])
        where = f" and the share of the {peak:g} TFLOP/s dense bf16 peak" if peak else ""
        lines.append(f"\nAchieved TFLOP/s per step (first video: planned FLOPs / seconds){where}:\n")
        lines.append("| configuration | " + " | ".join(steps) + " |")
        lines.append("|---" * (len(steps) + 1) + "|")
        for name, report in reports.items():
            seconds = {r["step"]: r["seconds"] for r in report["runs"][0]}
            cells = []
            for step in steps:
                rate = planned[step] / seconds[step] if step in seconds and step in planned else None
                share = f" ({rate / peak:.0%})" if rate is not None and peak else ""
                cells.append("-" if rate is None else f"{rate:.3g}{share}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("\nWeight storage at the released size (counted on the meta device):\n")
    lines.append(f"| model | {results['weights_precision']} GiB | fp8 GiB |\n|---|---|---|")
    lines += [f"| {r['model']} | {r['gib']:.2f} | {r['fp8_gib']:.2f} |" for r in results["weights"]]
    return "\n".join(lines)


def cache_table(results: dict) -> str:
    """The Markdown report of the cache configurations against ``cache-off``."""
    reports = results["caches"]
    base = reports[CACHE_BASELINE]
    base_seconds = _summary(base["runs"][0])["seconds"]
    lines = [
        f"Step caching against {CACHE_BASELINE} in the same run ({results['cache_settings']}, {results['cache_precision']}):\n",
        f"| configuration | seconds | speed-up vs {CACHE_BASELINE} | video max abs vs {CACHE_BASELINE} | PSNR dB |",
        "|---|---|---|---|---|",
    ]
    for name, report in reports.items():
        seconds = _summary(report["runs"][0])["seconds"]
        distance = report.get("distance", {"max_abs": 0.0, "psnr_db": float("inf")})
        lines.append(f"| {name} | {seconds:.2f} | {base_seconds / seconds:.2f}x | {distance['max_abs']:.3g} | {distance['psnr_db']:.1f} |")
    roles = list(base["work"])
    lines.append("\nUNet forwards run (skipped) and attention computations run (skipped), per stage model:\n")
    lines.append("| configuration | " + " | ".join(roles) + " |")
    lines.append("|---" * (len(roles) + 1) + "|")
    for name, report in reports.items():
        cells = []
        for role in roles:
            done, full = report["work"][role], base["work"][role]
            forwards, attention = done["forwards"], done["attention"]
            cells.append(f"{forwards} ({full['forwards'] - forwards}) fwd, {attention} ({full['attention'] - attention}) attn")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    steps = [r["step"] for r in base["runs"][0]]
    base_step = {r["step"]: r["seconds"] for r in base["runs"][0]}
    lines.append(f"\nSpeed-up per step vs {CACHE_BASELINE} (its seconds / the configuration's):\n")
    lines.append("| configuration | " + " | ".join(steps) + " |")
    lines.append("|---" * (len(steps) + 1) + "|")
    for name, report in reports.items():
        seconds = {r["step"]: r["seconds"] for r in report["runs"][0]}
        lines.append(f"| {name} | " + " | ".join(f"{base_step[step] / seconds[step]:.2f}x" for step in steps) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the report and write it (JSON and Markdown) to bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["released", "tiny"], default="tiny")
    parser.add_argument("--dry-run", action="store_true", help="released mode on the CPU at toy width and the reduced size")
    parser.add_argument("--configs", default=None, help="comma-separated configurations (default: all; 'original' is always run)")
    parser.add_argument("--precision", default="bf16", choices=["fp16", "bf16", "fp32"], help="released mode on a GPU")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every stage's step count (quick checks)")
    parser.add_argument(
        "--batch-videos",
        type=int,
        default=6,
        help="tiny mode: also time this many videos as a loop of `show1 generate` runs and as `show1 batch --by video/stage` "
        "(bench/batch_throughput.py; needs Ray; 0 skips it)",
    )
    parser.add_argument("--cache-steps", type=int, default=TINY_CACHE_STEPS, help="tiny mode: steps per stage of the cache configurations")
    args = parser.parse_args(argv)

    real = args.mode == "released" and not args.dry_run
    if real and not torch.cuda.is_available():
        parser.error("--mode released needs a CUDA GPU (or --dry-run to check it on the CPU)")
    device = torch.device("cuda" if real else "cpu")
    dtype = parse_dtype(args.precision) if real else torch.float32
    chosen, caches = configs(device), cache_configs()[1:]
    if args.configs:
        names = {n.strip() for n in args.configs.split(",")} | {"original"}
        known = [c.name for c in chosen + caches] + [CACHE_BASELINE]
        unknown = names - set(known)
        if unknown:
            parser.error(f"unknown configuration(s) {', '.join(sorted(unknown))}; choose from {', '.join(known)}")
        chosen, caches = [c for c in chosen if c.name in names], [c for c in caches if c.name in names]
    settings = scaled_steps(PAPER_SETTINGS if real else REDUCED, args.steps_scale)
    cache_settings = settings if real else cache_steps(args.cache_steps)
    cache_dtype = dtype if real else torch.float64
    results: dict = {
        "mode": args.mode + (" (dry run)" if args.dry_run else ""),
        "device": torch.cuda.get_device_name(0) if real else "cpu",
        "precision": str(dtype).removeprefix("torch."),
        "settings": "paper" if real else "reduced",
        "configs": {},
    }
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # a barrier of several threads stalls whenever the machine is busy; one thread does not
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        write_tiny_models(Path(tmp))
        checkpoints = CascadeCheckpoints.resolve(Path(tmp), allow_download=False)
        bench = Bench(device, dtype, settings, checkpoints, random_models=args.mode == "released", toy=args.dry_run)
        bench.run(dataclasses.replace(chosen[0], name="warm-up"))  # first-use costs (kernels, allocator) out of the way
        for config in chosen:
            started = time.perf_counter()
            results["configs"][config.name] = bench.run(config)
            print(f"{config.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        if not args.dry_run:  # the dry run's toy-width models have no FLOPs worth reporting
            results["planned_tflop"] = planned_tflop(bench, real)
        if caches:
            steps = "paper settings" if real else f"4 keyframes at 8x8 -> 13 frames -> 32x32 -> 32x32, {args.cache_steps} steps per stage"
            results["cache_settings"], results["cache_precision"] = steps, str(cache_dtype).removeprefix("torch.")
            results["caches"] = compare_caches(dataclasses.replace(bench, settings=cache_settings, dtype=cache_dtype), caches)
    torch.set_num_threads(threads)
    if args.mode == "tiny" and args.batch_videos > 0:
        import batch_throughput  # bench/, beside this script

        results["batch"] = batch_throughput.measure(args.batch_videos)
    weights_dtype = torch.bfloat16 if dtype == torch.float32 else dtype
    results["weights_precision"], results["weights"] = str(weights_dtype).removeprefix("torch."), weight_storage(weights_dtype)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{args.mode}{'-dry-run' if args.dry_run else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2))
    report = f"## {results['mode']} on {results['device']}, {results['precision']}, {results['settings']} settings\n\n" + table(results)
    if caches:
        report += "\n\n" + cache_table(results)
    if "batch" in results:
        import batch_throughput

        report += "\n\n" + batch_throughput.table(results["batch"])
    stem.with_suffix(".md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
