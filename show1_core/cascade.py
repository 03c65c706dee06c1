"""The whole cascade: text in, video out, one stage model on the accelerator at a time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from .errors import InputError
from .loading.hub import resolve_checkpoint
from .loading.registry import CHECKPOINT_FOR_STAGE, T5_CHECKPOINT, Stage
from .loading.stage_model import StageModel, load_stage_model
from .memory import MemoryPolicy, ModelPlacer, default_dtype, explain_out_of_memory, resolve_device, tiled_vae
from .motion_lora import MotionLora, motion_loras
from .settings import PAPER_SETTINGS, CascadeSettings
from .stages import (
    PromptEmbeds,
    StepCallback,
    generate_keyframes,
    interpolate_frames,
    interpolated_fps,
    prepare_input,
    super_resolve_latent,
    super_resolve_pixels,
    upscale_bilinear,
    upscale_first_frame,
)
from .text import EmbeddingCache, EncoderKind, TextEncoder, TextEncoderSpec

STAGE_COUNT = 4


@dataclass
class CascadeCheckpoints:
    """Local folders of every model the cascade uses."""

    keyframes: Path
    interpolation: Path
    pixel_sr: Path
    latent_sr: Path
    t5: Path
    first_frame: Path | None = None

    @classmethod
    def resolve(
        cls, models_dir: Path | str | None, stages: int = STAGE_COUNT, use_first_frame_model: bool = True, allow_download: bool = True
    ) -> "CascadeCheckpoints":
        """Find (downloading on first use) the checkpoints for the first ``stages`` stages."""

        def get(stage: Stage, needed_from: int, **kw) -> Path:
            if stages < needed_from:
                return Path()
            return resolve_checkpoint(CHECKPOINT_FOR_STAGE[stage].name, models_dir, allow_download=allow_download, **kw)

        return cls(
            keyframes=get(Stage.KEYFRAMES, 1),
            t5=resolve_checkpoint(T5_CHECKPOINT.name, models_dir, with_text_encoder=True, allow_download=allow_download),
            interpolation=get(Stage.INTERPOLATION, 2),
            pixel_sr=get(Stage.PIXEL_SR, 3),
            first_frame=get(Stage.FIRST_FRAME, 3) if use_first_frame_model else None,
            latent_sr=get(Stage.LATENT_SR, 4),
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


StageHook = Callable[[str, torch.Tensor, float], None]
"""Called with (stage name, video, fps) when a stage finishes."""
StartHook = Callable[[str], None]
"""Called with a step's name (``text_t5``, ``keyframes``, ``first_frame``, ...) before it runs."""


class Show1Cascade:
    """Runs the four stages over checkpoint folders under a memory policy."""

    def __init__(
        self,
        checkpoints: CascadeCheckpoints,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        policy: MemoryPolicy | str = MemoryPolicy.BALANCED,
        cache: EmbeddingCache | None = None,
        models: dict[Stage, StageModel] | None = None,
        text_loaders: dict[EncoderKind, Callable[[], tuple[object, torch.nn.Module]]] | None = None,
        motion_loras: Sequence[MotionLora] = (),
    ):
        """``models`` and ``text_loaders`` supply models built elsewhere (e.g. random weights for
        benchmarks) instead of loading them from ``checkpoints``. ``motion_loras`` are applied to
        the stage each was trained for while that stage runs."""
        self.checkpoints = checkpoints
        self.device = resolve_device(device)
        self.dtype = dtype or default_dtype(self.device)
        self.placer = ModelPlacer(self.device, policy)
        self.cache = cache or EmbeddingCache()
        self._models: dict[Stage, StageModel] = dict(models or {})
        self._text_loaders = dict(text_loaders or {})
        self.motion_loras = list(motion_loras)

    def model(self, stage: Stage) -> StageModel:
        """The stage's models, loaded on first use (kept on the CPU between uses unless freed)."""
        if stage not in self._models:
            folder = {
                Stage.KEYFRAMES: self.checkpoints.keyframes,
                Stage.INTERPOLATION: self.checkpoints.interpolation,
                Stage.FIRST_FRAME: self.checkpoints.first_frame,
                Stage.PIXEL_SR: self.checkpoints.pixel_sr,
                Stage.LATENT_SR: self.checkpoints.latent_sr,
            }[stage]
            self._models[stage] = load_stage_model(folder, stage, dtype=self.dtype)
        return self._models[stage]

    def _done_with(self, stage: Stage) -> None:
        if self.placer.settings.free_after_stage and stage in self._models:
            for module in self._models.pop(stage).modules():
                self.placer.release(module)

    def encode(self, kind: EncoderKind, prompt: str, negative: str, clean_caption: bool = False) -> PromptEmbeds:
        """Prompt embeddings from the T5 (stages 1-3) or CLIP (stage 4) encoder, cached."""
        folder = self.checkpoints.t5 if kind == EncoderKind.T5 else self.checkpoints.latent_sr
        spec = TextEncoderSpec(folder, kind, dtype=self.dtype)
        encoder = TextEncoder(spec, self.placer, self.cache, loader=self._text_loaders.get(kind))
        return encoder.encode(prompt, negative, clean_caption)

    def _run_stage(self, stage: Stage, fn, *args, **kwargs) -> torch.Tensor:
        model = self.model(stage)
        loras = [lora for lora in self.motion_loras if lora.info.stage == stage]
        with explain_out_of_memory(f"the {stage.title}"), self.placer.on_device(*model.modules()), motion_loras(model, loras):
            return fn(model, *args, **kwargs).to("cpu")

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
    ) -> CascadeResult:
        """Generate a video for ``prompt``, stopping after stage ``stages`` (1-4)."""
        if not 1 <= stages <= STAGE_COUNT:
            raise InputError(f"stages must be between 1 and {STAGE_COUNT}, got {stages}")
        started = on_start or (lambda name: None)
        negative = settings.negative_prompt if negative_prompt is None else negative_prompt
        started("text_t5")
        t5 = self.encode(EncoderKind.T5, prompt, negative, clean_caption)
        result = CascadeResult()
        seed = settings.seed

        def finish(name: str, stage: Stage, video: torch.Tensor, fps: float) -> None:
            setattr(result, name, video)
            result.fps[name] = fps
            self._done_with(stage)
            if on_stage is not None:
                on_stage(name, video, fps)

        kf = settings.keyframes
        started("keyframes")
        finish("keyframes", Stage.KEYFRAMES, self._run_stage(Stage.KEYFRAMES, generate_keyframes, t5, kf, seed, callback=callback), kf.fps)
        if stages >= 2:
            it = settings.interpolation
            started("interpolated")
            video = self._run_stage(Stage.INTERPOLATION, interpolate_frames, result.keyframes, t5, it, seed, callback=callback)
            finish("interpolated", Stage.INTERPOLATION, video, interpolated_fps(kf.fps, it.frames_between))
        if stages >= 3:
            low = result.interpolated[:, :, 0]
            sr = settings.pixel_sr
            height, width = low.shape[-2] * sr.scale, low.shape[-1] * sr.scale
            if self.checkpoints.first_frame is not None or Stage.FIRST_FRAME in self._models:
                started("first_frame")
                first = self._run_stage(Stage.FIRST_FRAME, upscale_first_frame, low, t5, height, width, settings.first_frame, seed, callback=callback)
                self._done_with(Stage.FIRST_FRAME)
            else:
                first = upscale_bilinear(low, height, width)
            result.first_frame = first
            started("pixel_sr")
            video = self._run_stage(Stage.PIXEL_SR, super_resolve_pixels, result.interpolated, t5, first, sr, seed, callback=callback)
            finish("pixel_sr", Stage.PIXEL_SR, video, result.fps["interpolated"])
        if stages >= 4:
            ls = replace(settings.latent_sr, vae_batch=min(settings.latent_sr.vae_batch, self.placer.settings.vae_frames_per_batch))
            started("text_clip")
            clip = self.encode(EncoderKind.CLIP, prompt, settings.latent_negative_prompt)
            _, video_in = prepare_input(result.pixel_sr, ls.width, ls.height)
            started("latent_sr")
            with tiled_vae(self.model(Stage.LATENT_SR).vae, self.placer.settings.vae_tiling):
                video = self._run_stage(Stage.LATENT_SR, super_resolve_latent, video_in, clip, ls, seed, callback=callback)
            finish("latent_sr", Stage.LATENT_SR, video, result.fps["pixel_sr"])
        return result
