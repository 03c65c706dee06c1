"""The whole cascade: text in, video out, one stage model on the accelerator at a time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from .errors import InputError
from .footprint import accelerator_memory_bytes
from .loading.hub import resolve_checkpoint
from .loading.registry import CHECKPOINT_FOR_STAGE, T5_CHECKPOINT, ModelRole
from .loading.stage_model import StageModel, load_stage_model
from .memory import POLICY_SETTINGS, MemoryPolicy, ModelPlacer, default_dtype, resolve_device
from .motion_lora import MotionLora, with_motion_loras
from .plan.fitting import RunConfig, refuse_unless_it_fits
from .plan.planner import PlanModels, roles_of_run
from .runner import PlacedModel, place, run_interpolation, run_keyframes, run_latent_sr, run_pixel_sr
from .settings import PAPER_SETTINGS, CascadeSettings, SpeedSettings
from .speed import apply_speed
from .stages import PromptEmbeds, StepCallback, interpolated_fps
from .text import EmbeddingCache, EncoderKind, TextEncoder, TextEncoderSpec
from .validation.cascade import validate_cascade
from .validation.models import ModelLimits

STAGE_COUNT = 4
CASCADE_STAGES = (ModelRole.KEYFRAMES, ModelRole.INTERPOLATION, ModelRole.PIXEL_SR, ModelRole.LATENT_SR)
"""The stage model each of the four stages runs (stage 3 also IF-II-L, where it is used)."""


@dataclass
class CascadeCheckpoints:
    """Local folders of every model the cascade uses (``None``: a stage that will not run)."""

    t5: Path
    keyframes: Path | None = None
    interpolation: Path | None = None
    pixel_sr: Path | None = None
    latent_sr: Path | None = None
    first_frame: Path | None = None

    @classmethod
    def resolve(
        cls, models_dir: Path | str | None, stages: int = STAGE_COUNT, use_first_frame_model: bool = True, allow_download: bool = True
    ) -> "CascadeCheckpoints":
        """Find (downloading on first use) the checkpoints for the first ``stages`` stages."""

        def get(stage: ModelRole, needed_from: int) -> Path | None:
            if stages < needed_from:
                return None
            return resolve_checkpoint(CHECKPOINT_FOR_STAGE[stage].name, models_dir, allow_download=allow_download)

        return cls(
            t5=resolve_checkpoint(T5_CHECKPOINT.name, models_dir, with_text_encoder=True, allow_download=allow_download),
            keyframes=get(ModelRole.KEYFRAMES, 1),
            interpolation=get(ModelRole.INTERPOLATION, 2),
            pixel_sr=get(ModelRole.PIXEL_SR, 3),
            first_frame=get(ModelRole.FIRST_FRAME, 3) if use_first_frame_model else None,
            latent_sr=get(ModelRole.LATENT_SR, 4),
        )


@dataclass
class CascadeResult:
    """Every stage's video ``(batch, 3, frames, height, width)`` in [-1, 1] (stage 4 raw from the VAE)."""

    keyframes: torch.Tensor | None = None
    interpolated: torch.Tensor | None = None
    first_frame: torch.Tensor | None = None
    pixel_sr: torch.Tensor | None = None
    latent_sr: torch.Tensor | None = None
    fps: dict[str, float] = field(default_factory=dict)

    def videos(self) -> dict[str, torch.Tensor]:
        """The stage videos produced so far, in cascade order."""
        names = ("keyframes", "interpolated", "pixel_sr", "latent_sr")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @property
    def final(self) -> tuple[str, torch.Tensor]:
        """Name and video of the last stage that ran."""
        name, video = list(self.videos().items())[-1]
        return name, video


def video_fps(settings: CascadeSettings, stages: int) -> float:
    """Frame rate of the video after stage ``stages``: the keyframes' rate, raised by interpolation from stage 2 on."""
    keyframes = settings.keyframes.fps
    return keyframes if stages < 2 else interpolated_fps(keyframes, settings.interpolation.frames_between)


StageHook = Callable[[str, torch.Tensor, float], None]
"""Called with (stage name, video, fps) when a stage finishes."""
StartHook = Callable[[str], None]
"""Called with a step's name (``text_t5``, ``keyframes``, ``first_frame``, ...) before it runs."""


@dataclass(frozen=True)
class Phase:
    """A part of a run, announced as it begins: loading a model, encoding a prompt, or a stage's denoising."""

    kind: str
    """``load``, ``encode`` or ``stage``."""
    label: str
    """What it is, for people: ``loading show-1-base``, ``encoding the prompt (T5-XXL)``, ``keyframes (stage 1)``."""


PhaseHook = Callable[[Phase], None]
ENCODER_LABEL = {EncoderKind.T5: "encoding the prompt (T5-XXL, stages 1-3)", EncoderKind.CLIP: "encoding the prompt (CLIP, stage 4)"}


class Show1Cascade:
    """Runs the four stages over checkpoint folders under a memory policy."""

    def __init__(
        self,
        checkpoints: CascadeCheckpoints,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        policy: MemoryPolicy | str = MemoryPolicy.BALANCED,
        cache: EmbeddingCache | None = None,
        models: dict[ModelRole, StageModel] | None = None,
        text_loaders: dict[EncoderKind, Callable[[], tuple[object, torch.nn.Module]]] | None = None,
        motion_loras: Sequence[MotionLora] = (),
        speed: SpeedSettings = SpeedSettings(),
    ):
        """``models`` and ``text_loaders`` supply models built elsewhere (e.g. random weights for
        benchmarks) instead of loading them from ``checkpoints``; they run as given. ``motion_loras``
        are applied to the stage each was trained for while that stage runs. ``speed`` applies to
        every stage model the cascade loads, and its ``fp8_weights`` to the T5 encoder too."""
        self.checkpoints = checkpoints
        self.device = resolve_device(device)
        self.dtype = dtype or default_dtype(self.device)
        self.placer = ModelPlacer(self.device, policy)
        self.cache = cache or EmbeddingCache()
        self._models: dict[ModelRole, StageModel] = dict(models or {})
        self._text_loaders = dict(text_loaders or {})
        self.motion_loras = list(motion_loras)
        self.speed = speed
        self._planned_to_fit: set[tuple[CascadeSettings, int]] = set()

    def _folder(self, stage: ModelRole) -> Path:
        folder = getattr(self.checkpoints, stage.value)
        if folder is None:
            raise InputError(f"no checkpoint was resolved for the {stage.title}; resolve the cascade for that stage")
        return Path(folder)

    def model(self, stage: ModelRole) -> StageModel:
        """The stage's models, loaded on first use (kept on the CPU between uses unless freed)."""
        if stage not in self._models:
            self._models[stage] = apply_speed(load_stage_model(self._folder(stage), stage, dtype=self.dtype), self.speed, self.device)
        return self._models[stage]

    def uses_first_frame_model(self) -> bool:
        """Whether stage 3 upscales frame 0 with IF-II-L (else bilinearly)."""
        return self.checkpoints.first_frame is not None or ModelRole.FIRST_FRAME in self._models

    def limits(self, stages: int = STAGE_COUNT) -> dict[ModelRole, ModelLimits]:
        """What each model of the first ``stages`` stages allows, from its configs (nothing is loaded)."""
        needed = list(CASCADE_STAGES[:stages]) + ([ModelRole.FIRST_FRAME] if stages >= 3 and self.uses_first_frame_model() else [])
        return {
            stage: ModelLimits.of_model(self._models[stage]) if stage in self._models else ModelLimits.of_folder(self._folder(stage), stage)
            for stage in needed
        }

    def placed(self, stage: ModelRole) -> PlacedModel:
        """The stage's models under this cascade's memory policy, with the motion LoRAs made for that stage."""
        return with_motion_loras(place(self.model(stage), self.placer), [lora for lora in self.motion_loras if lora.info.stage == stage])

    def _done_with(self, stage: ModelRole) -> None:
        if self.placer.settings.free_after_stage and stage in self._models:
            for module in self._models.pop(stage).modules():
                self.placer.release(module)

    def encode(self, kind: EncoderKind, prompt: str, negative: str, clean_caption: bool = False) -> PromptEmbeds:
        """Prompt embeddings from the T5 (stages 1-3) or CLIP (stage 4) encoder, cached."""
        folder = self.checkpoints.t5 if kind == EncoderKind.T5 else self.checkpoints.latent_sr
        spec = TextEncoderSpec(folder, kind, dtype=self.dtype, fp8_weights=self.speed.fp8_weights and kind == EncoderKind.T5)
        encoder = TextEncoder(spec, self.placer, self.cache, loader=self._text_loaders.get(kind))
        return encoder.encode(prompt, negative, clean_caption)

    def _refuse_unless_the_plan_fits(self, settings: CascadeSettings, stages: int) -> None:
        """On an accelerator whose memory is known, plan the run on ``meta`` from the checkpoints' configs
        (:mod:`show1_core.plan`) and refuse it, naming the options that would fit, when its peak is larger."""
        planned = (replace(settings, seed=0), stages)  # the seed changes no tensor's size
        if planned in self._planned_to_fit:
            return  # planned before (a batch worker runs many videos, each with its own seed, at the same settings)
        memory = accelerator_memory_bytes(self.device)
        roles = roles_of_run(stages, self.uses_first_frame_model())
        folders = {role: getattr(self.checkpoints, role.value) for role in roles}
        if memory is None or None in folders.values() or self.placer.settings != POLICY_SETTINGS[self.placer.policy]:
            return  # a CPU run, models given without folders, or a policy with its own meaning: nothing to plan
        t5 = self.checkpoints.t5
        build = lambda speed: PlanModels.of_folders(folders, t5, self.dtype, speed)  # noqa: E731
        config = RunConfig(self.placer.policy, self.speed)
        refuse_unless_it_fits(build, settings, stages, config, memory, self.uses_first_frame_model(), str(self.device))
        self._planned_to_fit.add(planned)

    def run(
        self,
        prompt: str,
        settings: CascadeSettings = PAPER_SETTINGS,
        stages: int = STAGE_COUNT,
        negative_prompt: str | None = None,
        clean_caption: bool = False,
        callback: StepCallback | None = None,
        on_stage: StageHook | None = None,
        on_start: StartHook | None = None,
        on_phase: PhaseHook | None = None,
    ) -> CascadeResult:
        """Generate a video for ``prompt``, stopping after stage ``stages`` (1-4).

        Every stage's settings are checked against every model (configs only) and the device's
        memory before anything runs (:func:`~show1_core.validation.cascade.validate_cascade`), once:
        the stage runs skip their own checks. Nothing is printed: ``callback`` gets each denoising
        step, ``on_phase`` each model load, prompt encoding and stage as it begins, ``on_stage``
        each finished stage's video.
        """
        if not 1 <= stages <= STAGE_COUNT:
            raise InputError(f"stages must be between 1 and {STAGE_COUNT}, got {stages}")
        validate_cascade(settings, self.limits(stages), stages, self.device, self.dtype, self.speed.split_guidance)
        self._refuse_unless_the_plan_fits(settings, stages)
        started = on_start or (lambda name: None)
        phase = on_phase or (lambda phase: None)
        negative = settings.negative_prompt if negative_prompt is None else negative_prompt
        result = CascadeResult()

        def encoded(kind: EncoderKind, negative: str) -> PromptEmbeds:
            phase(Phase("encode", ENCODER_LABEL[kind]))
            return self.encode(kind, prompt, negative, clean_caption)

        def ready(stage: ModelRole) -> None:
            if stage not in self._models:
                phase(Phase("load", f"loading {self._folder(stage).name}"))
                self.model(stage)

        def begin(stage: ModelRole) -> None:
            phase(Phase("stage", stage.title))

        def finish(name: str, stage: ModelRole, video: torch.Tensor, fps: float) -> None:
            setattr(result, name, video)
            result.fps[name] = fps
            self._done_with(stage)
            if on_stage is not None:
                on_stage(name, video, fps)

        started("text_t5")
        t5 = encoded(EncoderKind.T5, negative)
        started("keyframes")
        ready(ModelRole.KEYFRAMES)
        begin(ModelRole.KEYFRAMES)
        finish("keyframes", ModelRole.KEYFRAMES, self.keyframes(t5, settings, callback, checked=True), video_fps(settings, 1))
        if stages >= 2:
            started("interpolated")
            ready(ModelRole.INTERPOLATION)
            begin(ModelRole.INTERPOLATION)
            video = self.interpolate(result.keyframes, t5, settings, callback, checked=True)
            finish("interpolated", ModelRole.INTERPOLATION, video, video_fps(settings, 2))
        if stages >= 3:
            started("pixel_sr")
            ready(ModelRole.PIXEL_SR)
            if self.uses_first_frame_model():
                ready(ModelRole.FIRST_FRAME)
            begin(ModelRole.PIXEL_SR)
            video, result.first_frame = self.super_resolve_pixels(result.interpolated, t5, settings, callback, checked=True)
            self._done_with(ModelRole.FIRST_FRAME)
            finish("pixel_sr", ModelRole.PIXEL_SR, video, video_fps(settings, 3))
        if stages >= 4:
            started("text_clip")
            clip = encoded(EncoderKind.CLIP, settings.latent_negative_prompt)
            started("latent_sr")
            ready(ModelRole.LATENT_SR)
            begin(ModelRole.LATENT_SR)
            video = self.super_resolve_latent(result.pixel_sr, clip, settings, callback, checked=True)
            finish("latent_sr", ModelRole.LATENT_SR, video, video_fps(settings, 4))
        return result

    def keyframes(
        self, t5: PromptEmbeds, settings: CascadeSettings, callback: StepCallback | None = None, *, checked: bool = False
    ) -> torch.Tensor:
        """Stage 1 alone: keyframes from T5 embeddings, with ``settings.keyframes`` and ``settings.seed``."""
        return run_keyframes(self.placed(ModelRole.KEYFRAMES), t5, settings.keyframes, settings.seed, callback, checked=checked)

    def interpolate(
        self,
        keyframes: torch.Tensor,
        t5: PromptEmbeds,
        settings: CascadeSettings,
        callback: StepCallback | None = None,
        *,
        checked: bool = False,
    ) -> torch.Tensor:
        """Stage 2 alone: frames between the keyframes, with ``settings.interpolation`` and ``settings.seed``."""
        stage = self.placed(ModelRole.INTERPOLATION)
        return run_interpolation(stage, keyframes, t5, settings.interpolation, settings.seed, callback, checked=checked)

    def super_resolve_pixels(
        self,
        video: torch.Tensor,
        t5: PromptEmbeds,
        settings: CascadeSettings,
        callback: StepCallback | None = None,
        *,
        checked: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 3 alone: the x4 video and its upscaled frame 0 (by IF-II-L where this cascade uses it)."""
        stage = self.placed(ModelRole.PIXEL_SR)
        anchor = self.placed(ModelRole.FIRST_FRAME) if self.uses_first_frame_model() else None
        return run_pixel_sr(stage, video, t5, settings.pixel_sr, settings.seed, callback, anchor, settings.first_frame, checked=checked)

    def super_resolve_latent(
        self,
        video: torch.Tensor,
        clip: PromptEmbeds,
        settings: CascadeSettings,
        callback: StepCallback | None = None,
        *,
        checked: bool = False,
    ) -> torch.Tensor:
        """Stage 4 alone: a stage-3 video refined in the latent space from CLIP embeddings, with ``settings.latent_sr``."""
        stage = self.placed(ModelRole.LATENT_SR)
        return run_latent_sr(stage, video, clip, settings.latent_sr, settings.seed, callback, checked=checked)
