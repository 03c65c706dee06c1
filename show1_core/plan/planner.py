"""A memory and compute plan of a real run, made on the ``meta`` device without a GPU.

The planner runs the cascade's own code path (the runner's ``run_*`` functions, so the same
stage functions, chunking and memory-policy settings as a real run) with the released models
built on ``meta`` (:mod:`.meta_models`), counting live tensors per device (:mod:`.live_bytes`)
and FLOPs (PyTorch's ``FlopCounterMode``). Inputs, embeddings and each stage's result are real
CPU tensors, as in a real run, where they live in host memory between stages; everything a
stage computes lives on ``meta``, standing for the accelerator.

Each part of the run (a text encoding, or one model holding the accelerator) is one row:

- weights on the accelerator, as the policy places them: under a one-model-at-a-time policy the
  part's own models; under ``all-resident`` every stage model loaded so far; the T5 streamed
  layer by layer (its largest layer), UNets with ``stream_blocks`` their diffusers block groups
  (the layers outside the down and up blocks, plus the two largest blocks: one running, one
  loading); text encoders leave the accelerator after their prompt in every policy;
- activations: the peak of the ``meta`` bytes while the part's models hold the accelerator;
- host: the models held in RAM but not on the accelerator, plus the run's host tensors;
- FLOPs, extrapolated from two short runs (1 and 2 denoising steps per window) to the real
  step count: every step has the same shapes.

Attention is counted as PyTorch's fused ``scaled_dot_product_attention`` runs on a CUDA GPU
(flash or memory-efficient kernels: the attention matrix is never materialised). Compilation
and other attention backends are not planned: they change speed, not what is allocated.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Mapping, TypeVar

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..embeds import PromptEmbeds
from ..loading.registry import ModelRole
from ..loading.stage_model import StageModel
from ..memory import POLICY_SETTINGS, MemoryPolicy, PolicySettings
from ..runner import PlacedModel, run_interpolation, run_keyframes, run_latent_sr, run_pixel_sr
from ..settings import PAPER_SETTINGS, CascadeSettings, SpeedSettings
from ..stages.sampling import count_steps, text_width_of
from ..text import MAX_TOKENS, EncoderKind
from .live_bytes import ALL, LiveBytes
from .meta_models import META, meta_stage_model, meta_stage_model_of_folder, meta_text_encoder, module_bytes

S = TypeVar("S")
ROLE_OF_PART = {role.value: role for role in ModelRole}


@dataclass(frozen=True)
class PartPlan:
    """What one part of the run needs: bytes on the accelerator and on the host, and FLOPs."""

    name: str
    weights: int
    """Weights on the accelerator while the part runs."""
    activations: int
    """Peak of everything else the part holds on the accelerator."""
    host: int
    """Peak host memory: models held in RAM and not on the accelerator, plus the part's host tensors."""
    flops: int

    @property
    def accelerator(self) -> int:
        """Peak accelerator bytes of the part."""
        return self.weights + self.activations


@dataclass(frozen=True)
class CascadePlan:
    """The plan of a whole run, one :class:`PartPlan` per part that runs."""

    parts: tuple[PartPlan, ...]

    @property
    def peak_accelerator(self) -> int:
        """The run's peak accelerator bytes (the largest part's)."""
        return max(part.accelerator for part in self.parts)

    @property
    def peak_host(self) -> int:
        """The run's peak host bytes."""
        return max(part.host for part in self.parts)

    @property
    def flops(self) -> int:
        """FLOPs of the whole run."""
        return sum(part.flops for part in self.parts)

    def part(self, name: str) -> PartPlan:
        """The row of part ``name``."""
        return next(part for part in self.parts if part.name == name)


class PlanPlacement:
    """A placement whose holding block is a section of the tracker (the models are already on ``device``)."""

    def __init__(self, tracker: LiveBytes, name: str, device: torch.device):
        self._tracker, self._name, self.device = tracker, name, device

    def holding(self) -> AbstractContextManager[None]:
        """The block in which the part's models hold the accelerator."""
        return self._tracker.section(self._name)


def _streamed_block_bytes(unet: nn.Module) -> int:
    """Bytes a UNet keeps on the accelerator when its blocks stream: what lies outside its down and up blocks
    (one group, resident for the whole call) plus its two largest blocks (one running, the next loading)."""
    blocks = [block for name in ("down_blocks", "up_blocks") for block in getattr(unet, name, [])]
    largest = sorted((module_bytes(block) for block in blocks), reverse=True)[:2]
    return module_bytes(unet) - sum(module_bytes(block) for block in blocks) + sum(largest)


def _largest_layer_bytes(module: nn.Module) -> int:
    """Bytes of the largest layer that holds weights itself (what a layer-by-layer stream keeps on the accelerator)."""
    return max(
        sum(t.numel() * t.element_size() for t in (*m.parameters(recurse=False), *m.buffers(recurse=False))) for m in module.modules()
    )


@dataclass
class PlanModels:
    """The models a plan runs, all on one ``device`` (``meta`` for a plan; a real device to measure a real run)."""

    device: torch.device
    dtype: torch.dtype
    speed: SpeedSettings
    stage: dict[ModelRole, StageModel]
    encoders: dict[EncoderKind, nn.Module]

    @classmethod
    def released(cls, roles: list[ModelRole], dtype: torch.dtype, speed: SpeedSettings) -> "PlanModels":
        """The released models of ``roles`` and the text encoders they need, built on ``meta``."""
        stage = {role: meta_stage_model(role, dtype, speed) for role in roles}
        kinds = [EncoderKind.T5] + ([EncoderKind.CLIP] if ModelRole.LATENT_SR in roles else [])
        encoders = {kind: meta_text_encoder(kind, dtype, speed.fp8_weights and kind == EncoderKind.T5) for kind in kinds}
        return cls(META, dtype, speed, stage, encoders)

    @classmethod
    def of_folders(cls, folders: Mapping[ModelRole, Path], t5: Path, dtype: torch.dtype, speed: SpeedSettings) -> "PlanModels":
        """The models of checkpoint ``folders`` (and the T5 of folder ``t5``; stage 4's CLIP comes with its model),
        built on ``meta`` from their config files."""
        stage = {role: meta_stage_model_of_folder(folder, role, dtype, speed) for role, folder in folders.items()}
        encoders = {EncoderKind.T5: meta_text_encoder(EncoderKind.T5, dtype, speed.fp8_weights, t5)}
        if ModelRole.LATENT_SR in folders:
            encoders[EncoderKind.CLIP] = meta_text_encoder(EncoderKind.CLIP, dtype, folder=folders[ModelRole.LATENT_SR])
        return cls(META, dtype, speed, stage, encoders)

    def all_modules(self) -> list[nn.Module]:
        """Every model built for the plan."""
        stage = [m for model in self.stage.values() for m in (model.unet, model.vae) if m is not None]
        return stage + list(self.encoders.values())

    def stage_bytes(self, role: ModelRole) -> int:
        model = self.stage[role]
        return module_bytes(model.unet) + module_bytes(model.vae)

    def on_accelerator(self, role: ModelRole) -> int:
        """Bytes of ``role``'s models on the accelerator while they run."""
        model = self.stage[role]
        unet = _streamed_block_bytes(model.unet) if self.speed.stream_blocks else module_bytes(model.unet)
        return unet + module_bytes(model.vae)


def _embeds(width: int, dtype: torch.dtype) -> PromptEmbeds:
    """Prompt embeddings as a run keeps them on the host (positive and negative, one prompt)."""
    return PromptEmbeds(torch.zeros(1, MAX_TOKENS, width, dtype=dtype), torch.zeros(1, MAX_TOKENS, width, dtype=dtype))


def _loops(model: StageModel, steps: int, strength: float = 1.0) -> int:
    """Denoising loop iterations per window for ``steps`` (stage 4 runs only the last ``strength`` of them)."""
    return min(int(steps * strength), steps) if model.stage == ModelRole.LATENT_SR else count_steps(model, steps)


def with_loops(settings: S, loops: int) -> S:
    """One stage's settings with the fewest steps that run ``loops`` denoising iterations per window (stage 4 keeps only
    the last ``strength`` of its steps)."""
    strength = getattr(settings, "strength", 1.0)
    steps = loops
    while min(int(steps * strength), steps) < loops:
        steps += 1
    return replace(settings, steps=steps)


def _short_settings(settings: CascadeSettings, loops: int) -> CascadeSettings:
    """``settings`` with the fewest steps that run ``loops`` denoising iterations per window in every stage."""
    stages = ("keyframes", "interpolation", "first_frame", "pixel_sr", "latent_sr")
    return replace(settings, **{name: with_loops(getattr(settings, name), loops) for name in stages})


def _module_flops(counter: FlopCounterMode, module: nn.Module) -> int:
    """FLOPs counted inside ``module`` (by its class name, as the counter names top-level modules)."""
    return sum(counter.get_flop_counts().get(type(module).__name__, {}).values())


@dataclass
class _Run:
    """One pass over the cascade on ``meta`` at a given step count: per part, its section peaks and FLOPs."""

    tracker: LiveBytes
    weights: int
    """Bytes of every model's weights (all on the models' device), counted before the run: the activations are the rest."""
    flops: dict[str, int]


def _run_once(
    models: PlanModels, settings: CascadeSettings, stages: int, policy: PolicySettings, first_frame: bool, count_flops: bool
) -> _Run:
    """One pass on ``meta``: either counting memory or counting FLOPs (PyTorch's FLOP counter makes attention take its
    unfused path, which materialises the attention matrix, so memory is counted in a pass without it)."""
    tracker = LiveBytes()
    flops: dict[str, int] = {}

    def counting() -> FlopCounterMode | nullcontext:
        return FlopCounterMode(display=False) if count_flops else nullcontext()

    def placed(role: ModelRole) -> PlacedModel:
        return PlacedModel(models.stage[role], PlanPlacement(tracker, role.value, models.device), policy_settings=policy)

    def encode(kind: EncoderKind, name: str) -> None:
        encoder = models.encoders[kind]
        tokens = torch.zeros(1, MAX_TOKENS, dtype=torch.long, device=models.device)
        with torch.inference_mode(), counting() as counter, tracker.section(name):
            for _ in ("prompt", "negative prompt"):
                encoder(input_ids=tokens)
        flops[name] = counter.get_total_flops() if count_flops else 0

    def stage(names: tuple[str, ...], work: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Run a stage; its FLOPs go to its part (stage 3's IF-II-L UNet's to the first-frame part)."""
        with counting() as counter:
            result = work()
        if not count_flops:
            return result
        total = counter.get_total_flops()
        if "first_frame" in names:
            flops["first_frame"] = _module_flops(counter, models.stage[ModelRole.FIRST_FRAME].unet)
            total -= flops["first_frame"]
        flops[names[-1]] = total
        return result

    with tracker:
        tracker.track_weights(*models.all_modules())
        weights = tracker.current[models.device.type]
        encode(EncoderKind.T5, "text_t5")
        t5 = _embeds(text_width_of(models.stage[ModelRole.KEYFRAMES].unet), models.dtype)
        video = stage(("keyframes",), lambda: run_keyframes(placed(ModelRole.KEYFRAMES), t5, settings.keyframes, checked=True))
        if stages >= 2:
            it = settings.interpolation
            video = stage(("interpolation",), lambda: run_interpolation(placed(ModelRole.INTERPOLATION), video, t5, it, checked=True))
        if stages >= 3:
            anchor = placed(ModelRole.FIRST_FRAME) if first_frame else None
            names = ("first_frame", "pixel_sr") if first_frame else ("pixel_sr",)
            sr = placed(ModelRole.PIXEL_SR)
            video = stage(
                names, lambda: run_pixel_sr(sr, video, t5, settings.pixel_sr, 0, None, anchor, settings.first_frame, checked=True)[0]
            )
        if stages >= 4:
            encode(EncoderKind.CLIP, "text_clip")
            clip = _embeds(text_width_of(models.stage[ModelRole.LATENT_SR].unet), models.dtype)
            stage(("latent_sr",), lambda: run_latent_sr(placed(ModelRole.LATENT_SR), video, clip, settings.latent_sr, checked=True))
    return _Run(tracker, weights, flops)


def flops_per_part(
    models: PlanModels, settings: CascadeSettings, stages: int, policy: PolicySettings, first_frame_model: bool = True
) -> dict[str, int]:
    """FLOPs of each part of the run at ``settings``, counted in runs of 1 and 2 denoising steps per window and
    extrapolated to the settings' steps (every step has the same shapes)."""
    one, two = (_run_once(models, _short_settings(settings, n), stages, policy, first_frame_model, True).flops for n in (1, 2))
    return {
        name: one[name] if name.startswith("text_") else one[name] + (_full_loops(models, settings, name) - 1) * (two[name] - one[name])
        for name in one
    }


def live_bytes_per_part(
    models: PlanModels, settings: CascadeSettings, stages: int, policy: PolicySettings, first_frame_model: bool = True
) -> dict[str, int]:
    """Per part, the peak bytes of every tensor the run holds, on every device, beyond the models' weights.

    The same whether the models run on ``meta`` or on a real device, where a plan's figures are checked.
    """
    run = _run_once(models, settings, stages, policy, first_frame_model, count_flops=False)
    return {name: peak[ALL] - run.weights for name, peak in run.tracker.section_peak.items()}


def _part_names(stages: int, first_frame: bool) -> list[str]:
    names = ["text_t5", "keyframes", "interpolation"][: stages + 1]
    if stages >= 3:
        names += (["first_frame"] if first_frame else []) + ["pixel_sr"]
    if stages >= 4:
        names += ["text_clip", "latent_sr"]
    return names


def _full_loops(models: PlanModels, settings: CascadeSettings, name: str) -> int:
    role = ROLE_OF_PART[name]
    step_settings = {
        ModelRole.KEYFRAMES: settings.keyframes.steps,
        ModelRole.INTERPOLATION: settings.interpolation.steps,
        ModelRole.FIRST_FRAME: settings.first_frame.steps,
        ModelRole.PIXEL_SR: settings.pixel_sr.steps,
        ModelRole.LATENT_SR: settings.latent_sr.steps,
    }
    return _loops(models.stage[role], step_settings[role], settings.latent_sr.strength)


STAGE_OF_PART = {"keyframes": 1, "interpolation": 2, "first_frame": 3, "pixel_sr": 3, "latent_sr": 4}


def placed_weights(models: PlanModels, names: list[str], policy: PolicySettings) -> Iterator[tuple[str, int, int]]:
    """Per part of ``names``: its name, the weights on the accelerator and the weights held in host RAM, as the policy
    places them.

    A stage's models load when it starts (stage 3's two together) and, where the policy frees
    finished stages, leave RAM when it ends; text encoders load for their prompt only.
    """
    loaded: list[ModelRole] = []
    current_stage = 0
    for name in names:
        if name.startswith("text_"):
            encoder = models.encoders[EncoderKind.T5 if name == "text_t5" else EncoderKind.CLIP]
            streamed = name == "text_t5" and policy.stream_text_encoder
            if policy.free_after_stage:
                loaded = []
            resident = [] if policy.one_model_at_a_time else loaded
            on_device = _largest_layer_bytes(encoder) if streamed else module_bytes(encoder)
            in_ram = module_bytes(encoder) if streamed else 0
            yield name, on_device + sum(models.on_accelerator(r) for r in resident), in_ram + _ram(models, loaded, resident)
            continue
        if STAGE_OF_PART[name] != current_stage:
            current_stage = STAGE_OF_PART[name]
            if policy.free_after_stage:
                loaded = []
            loaded += [ROLE_OF_PART[part] for part in names if STAGE_OF_PART.get(part) == current_stage]
        resident = [ROLE_OF_PART[name]] if policy.one_model_at_a_time else loaded
        yield name, sum(models.on_accelerator(r) for r in resident), _ram(models, loaded, resident)


def _ram(models: PlanModels, loaded: list[ModelRole], resident: list[ModelRole]) -> int:
    """Host bytes of the loaded stage models: whole when off the accelerator, and what streams from the host."""
    return sum(
        models.stage_bytes(r) - (models.on_accelerator(r) if r in resident and not models.speed.stream_blocks else 0) for r in loaded
    )


def roles_of_run(stages: int, first_frame_model: bool = True) -> list[ModelRole]:
    """The models a run of the first ``stages`` stages uses."""
    roles = [ModelRole.KEYFRAMES, ModelRole.INTERPOLATION, ModelRole.PIXEL_SR, ModelRole.LATENT_SR][:stages]
    return roles + ([ModelRole.FIRST_FRAME] if stages >= 3 and first_frame_model else [])


def plan_cascade(
    settings: CascadeSettings = PAPER_SETTINGS,
    stages: int = 4,
    dtype: torch.dtype = torch.bfloat16,
    policy: MemoryPolicy = MemoryPolicy.BALANCED,
    speed: SpeedSettings = SpeedSettings(),
    first_frame_model: bool = True,
    policy_settings: PolicySettings | None = None,
    count_flops: bool = True,
) -> CascadePlan:
    """The accelerator and host memory and the FLOPs of each part of a run of the first ``stages`` stages.

    The run is the cascade's own, on the released models built on ``meta``, with 2 denoising
    steps per window for memory (a multistep solver holds its previous output from the second
    step on), and with 1 and 2 for FLOPs, extrapolated to the settings' steps.
    ``policy_settings`` overrides what ``policy`` means (the original's strategy, for one); without
    ``count_flops`` only memory is planned (one pass instead of three) and every part's FLOPs are 0.
    """
    meaning = policy_settings or POLICY_SETTINGS[policy]
    return plan_run(
        PlanModels.released(roles_of_run(stages, first_frame_model), dtype, speed),
        settings,
        stages,
        meaning,
        first_frame_model,
        count_flops,
    )


def plan_run(
    models: PlanModels,
    settings: CascadeSettings,
    stages: int,
    policy: PolicySettings,
    first_frame_model: bool = True,
    count_flops: bool = True,
) -> CascadePlan:
    """The plan of a run of ``models`` (see :func:`plan_cascade`); on a real device, a measurement of the same run."""
    memory = _run_once(models, _short_settings(settings, 2), stages, policy, first_frame_model, count_flops=False)
    names = _part_names(stages, first_frame_model)
    flops = flops_per_part(models, settings, stages, policy, first_frame_model) if count_flops else dict.fromkeys(names, 0)
    parts = []
    for name, weights, ram in placed_weights(models, names, policy):
        peak = memory.tracker.section_peak[name]
        parts.append(PartPlan(name, weights, peak[models.device.type] - memory.weights, ram + peak["cpu"], flops[name]))
    return CascadePlan(tuple(parts))
