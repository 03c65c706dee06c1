"""The one way a stage runs, shared by ``show1 generate``, the Python cascade and the ComfyUI nodes.

A stage runs on a :class:`PlacedModel`: its loaded models, the :class:`Placement` that holds
them on the accelerator for the run, and the memory policy chosen for them. The ``run_*``
functions prepare each stage's inputs as the original does, apply the policy (VAE frames per
batch, tiling), count progress over the whole stage (stage 3's IF-II-L frame and windows as
one), honour cancel through the callback, explain out-of-memory errors, and return the
result on the CPU. Each checks its inputs once (:mod:`show1_core.validation.stage_inputs`)
unless ``checked``: the cascade checks every stage before the first
(:func:`~show1_core.validation.cascade.validate_cascade`). show1 places models with its
:class:`~show1_core.memory.ModelPlacer` (:func:`place`); the node pack supplies a placement backed by ComfyUI's model management.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Protocol, TypeVar

import torch

from .loading.registry import ModelRole
from .loading.stage_model import StageModel
from .memory import POLICY_SETTINGS, MemoryPolicy, ModelPlacer, PolicySettings, explain_out_of_memory, tiled_vae
from .settings import FirstFrameSettings, InterpolationSettings, KeyframeSettings, LatentSRSettings, PixelSRSettings
from .stages import (
    PromptEmbeds,
    StepCallback,
    decode_latents,
    encode_video,
    generate_keyframes,
    interpolate_frames,
    prepare_input,
    refine_latents,
    super_resolve_latent,
    super_resolve_pixels,
    upscale_bilinear,
    upscale_first_frame,
    window_starts,
)
from .stages.progress import StageSteps
from .stages.sampling import count_steps, seeded_generator
from .validation.ranges import raise_problems, seed_problems
from .validation.stage_inputs import (
    check_first_frame_inputs,
    check_latent_refine_inputs,
    check_latent_sr_inputs,
    check_pixel_sr_inputs,
    require_vae,
)

T = TypeVar("T")


class Placement(Protocol):
    """Holds one stage's models on the accelerator for the duration of a ``with`` block."""

    device: torch.device

    def holding(self) -> AbstractContextManager[None]:
        """The block during which the models are on :attr:`device`."""


@dataclass
class PlacedModel:
    """A loaded stage model, how it reaches the accelerator, and its memory policy."""

    model: StageModel
    placement: Placement
    policy: MemoryPolicy = MemoryPolicy.BALANCED
    policy_settings: PolicySettings | None = None
    """What the policy means, when not the standard meaning (:data:`~show1_core.memory.POLICY_SETTINGS`)."""

    @property
    def memory(self) -> PolicySettings:
        """What the policy means for this stage."""
        return self.policy_settings or POLICY_SETTINGS[self.policy]


class PlacerPlacement:
    """A stage's modules moved by show1's :class:`~show1_core.memory.ModelPlacer`."""

    def __init__(self, placer: ModelPlacer, model: StageModel):
        self.placer = placer
        self.device = placer.device
        self._modules = model.modules()

    def holding(self) -> AbstractContextManager[None]:
        """The placer's ``on_device`` for this stage's modules."""
        return self.placer.on_device(*self._modules)


def place(model: StageModel, placer: ModelPlacer) -> PlacedModel:
    """A stage model placed by ``placer`` under the placer's policy (and its meaning of it)."""
    return PlacedModel(model, PlacerPlacement(placer, model), placer.policy, placer.settings)


@contextmanager
def _vae_mode(stage: PlacedModel) -> Iterator[None]:
    vae = stage.model.vae
    with tiled_vae(vae, stage.memory.vae_tiling) if vae is not None else nullcontext():
        yield


def _run(stage: PlacedModel, work: Callable[[], T]) -> T:
    """``work()`` with the stage's models on the device; its tensor result comes back on the CPU."""
    with explain_out_of_memory(f"the {stage.model.stage.title}"), torch.inference_mode(), stage.placement.holding(), _vae_mode(stage):
        result = work()
    return _on_host(result)


def _on_host(result: torch.Tensor) -> torch.Tensor:
    """``result`` on the CPU; a ``meta`` result (a memory plan) becomes CPU zeros of its shape, the host memory it would take."""
    return torch.zeros(result.shape, dtype=result.dtype) if result.is_meta else result.to("cpu")


def _vae_settings(stage: PlacedModel, settings: LatentSRSettings) -> LatentSRSettings:
    return replace(settings, vae_batch=min(settings.vae_batch, stage.memory.vae_frames_per_batch))


def run_keyframes(
    stage: PlacedModel,
    embeds: PromptEmbeds,
    settings: KeyframeSettings = KeyframeSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
    batch: int = 1,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Stage 1: ``(batch, 3, frames, height, width)`` keyframes from T5 embeddings."""
    return _run(stage, lambda: generate_keyframes(stage.model, embeds, settings, seed, batch, callback, checked=checked))


def run_interpolation(
    stage: PlacedModel,
    frames: torch.Tensor,
    embeds: PromptEmbeds,
    settings: InterpolationSettings = InterpolationSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Stage 2: ``frames_between`` new frames between each neighbouring pair of ``frames``."""
    return _run(stage, lambda: interpolate_frames(stage.model, frames, embeds, settings, seed, callback, checked=checked))


def run_pixel_sr(
    stage: PlacedModel,
    video: torch.Tensor,
    embeds: PromptEmbeds,
    settings: PixelSRSettings = PixelSRSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
    first_frame: PlacedModel | None = None,
    first_frame_settings: FirstFrameSettings = FirstFrameSettings(),
    *,
    checked: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 3: frame 0 upscaled (by IF-II-L when ``first_frame`` is given, else bilinearly), then the windows.

    Returns ``(video at scale x the size, upscaled frame 0)``; progress counts the IF-II-L
    steps and every window's steps as one stage.
    """
    if not checked:
        check_pixel_sr_inputs(stage.model, video, settings, seed)
    low = video[:, :, 0]
    height, width = low.shape[-2] * settings.scale, low.shape[-1] * settings.scale
    if not checked and first_frame is not None:
        check_first_frame_inputs(first_frame.model, low, height, width, first_frame_settings, seed)
    windows = len(window_starts(video.shape[2], settings.window, settings.stride))
    anchor_steps = count_steps(first_frame.model, first_frame_settings.steps) if first_frame is not None else 0
    total = anchor_steps + windows * count_steps(stage.model, settings.steps)
    if first_frame is None:
        anchor = upscale_bilinear(low, height, width)
    else:
        anchor = _run(
            first_frame,
            lambda: upscale_first_frame(
                first_frame.model,
                low,
                embeds,
                height,
                width,
                first_frame_settings,
                seed,
                callback,
                StageSteps(ModelRole.PIXEL_SR.value, 0, total),
                checked=True,
            ),
        )
    progress = StageSteps(ModelRole.PIXEL_SR.value, anchor_steps, total)
    upscaled = _run(
        stage, lambda: super_resolve_pixels(stage.model, video, embeds, anchor, settings, seed, callback, progress, checked=True)
    )
    return upscaled, anchor


def _stage4_input(stage: PlacedModel, video: torch.Tensor, width: int, height: int, checked: bool) -> torch.Tensor:
    """A stage-3 video as the original feeds stage 4: quantised to 8 bits in the model's precision, resized with PIL."""
    return prepare_input(video.to(stage.model.unet.dtype), width, height, checked=checked)[1]


def run_latent_sr(
    stage: PlacedModel,
    video: torch.Tensor,
    embeds: PromptEmbeds,
    settings: LatentSRSettings = LatentSRSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
    *,
    checked: bool = False,
) -> torch.Tensor:
    """Stage 4: a stage-3 video (any size) to the raw VAE decode at ``settings.width`` x ``settings.height``."""
    if not checked:
        check_latent_sr_inputs(stage.model, video, settings, seed, resized=False)
    frames = _stage4_input(stage, video, settings.width, settings.height, checked=True)
    return _run(
        stage, lambda: super_resolve_latent(stage.model, frames, embeds, _vae_settings(stage, settings), seed, callback, checked=True)
    )


def run_vae_encode(stage: PlacedModel, video: torch.Tensor, width: int, height: int, seed: int = 0) -> torch.Tensor:
    """Stage 4's first part: a video resized as stage 4 does and encoded to scaled latents (one posterior sample)."""
    require_vae(stage.model)
    raise_problems(seed_problems(seed))
    frames = _stage4_input(stage, video, width, height, checked=False)
    batch = _vae_settings(stage, LatentSRSettings()).vae_batch
    return _run(stage, lambda: encode_video(stage.model.vae, frames, seeded_generator(seed), batch))


def run_latent_refine(
    stage: PlacedModel,
    latents: torch.Tensor,
    embeds: PromptEmbeds,
    settings: LatentSRSettings = LatentSRSettings(),
    seed: int = 0,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Stage 4's middle: re-noise scaled latents to ``settings.strength`` and denoise them."""
    raise_problems(seed_problems(seed))
    check_latent_refine_inputs(stage.model, latents, settings)
    generator = seeded_generator(seed)
    return _run(stage, lambda: refine_latents(stage.model, latents, embeds, settings, generator, callback, checked=True))


def run_vae_decode(stage: PlacedModel, latents: torch.Tensor) -> torch.Tensor:
    """Stage 4's last part: scaled latents to the raw float32 video."""
    require_vae(stage.model)
    batch = _vae_settings(stage, LatentSRSettings()).vae_batch
    return _run(stage, lambda: decode_latents(stage.model.vae, latents, batch))
