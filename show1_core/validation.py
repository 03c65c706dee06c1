"""Every stage's settings checked against every model before the first step.

Checked only when its stage started, a bad stage-4 size or stage-3 noise level would be found
minutes of accelerator time later. :func:`validate_cascade` checks all of it up front: the
ranges of :mod:`show1_core.setting_ranges`, then what each model allows (read from its configs,
so nothing is loaded: size steps, noise levels, the VAE's scale), then a lower bound of each
stage's memory (:mod:`show1_core.footprint`) against the device's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import CorruptCheckpointError, WrongStageError
from .footprint import device_memory_bytes, downscale_factor, gib, unet_activation_bytes, video_bytes
from .loading.components import read_json
from .loading.detect import describe_stage, stage_of_unet_config
from .loading.registry import ModelRole
from .loading.stage_model import StageModel, pipeline_folders
from .setting_ranges import Problem, raise_problems, settings_problems
from .settings import CascadeSettings
from .stages.interpolation import interpolated_length


@dataclass(frozen=True)
class ModelLimits:
    """What one stage model allows, from its configs."""

    stage: ModelRole
    size_multiple: int
    """Frame sizes must be multiples of this (the UNet's down/up path)."""
    features: int
    """Channels of the UNet's first level."""
    layers: int
    """ResNet layers of the UNet's first level."""
    noise_levels: int | None = None
    """Levels of the condition's noising scheduler (stage 3)."""
    vae_scale: int | None = None
    """Pixels per latent along a side (stage 4)."""

    @classmethod
    def of_configs(
        cls, stage: ModelRole, unet: Mapping[str, Any], noising: Mapping[str, Any] | None = None, vae: Mapping[str, Any] | None = None
    ) -> "ModelLimits":
        """Limits from the UNet config and, where the stage has them, the noising scheduler's and the VAE's."""
        layers = unet["layers_per_block"]
        return cls(
            stage=stage,
            size_multiple=downscale_factor(unet),
            features=unet["block_out_channels"][0],
            layers=layers[0] if isinstance(layers, (list, tuple)) else layers,
            noise_levels=None if noising is None else noising["num_train_timesteps"],
            vae_scale=None if vae is None else downscale_factor(vae),
        )

    @classmethod
    def of_model(cls, model: StageModel) -> "ModelLimits":
        """Limits of a loaded stage model."""
        noising = None if model.noising_scheduler is None else model.noising_scheduler.config
        return cls.of_configs(model.stage, model.unet.config, noising, None if model.vae is None else model.vae.config)

    @classmethod
    def of_folder(cls, folder: Path | str, stage: ModelRole) -> "ModelLimits":
        """Limits of a checkpoint folder, reading only its config files.

        Raises :class:`WrongStageError` for another stage's UNet (before any size is checked against it)
        and :class:`CorruptCheckpointError` for a config whose numbers no model can be built from.
        """
        root, unet_folder = pipeline_folders(Path(folder).expanduser())
        unet_file = unet_folder / "config.json"
        unet = _checked_config(unet_file, UNET_NUMBERS, UNET_OPTIONAL_NUMBERS)
        found = stage_of_unet_config(unet)
        if found != stage:
            raise WrongStageError(
                f"{unet_folder} holds {describe_stage(found)}, but the {stage.title} model was expected. "
                "Pick the checkpoint made for that stage."
            )
        schedulers = ["scheduler"] + (["image_noising_scheduler"] if stage in (ModelRole.FIRST_FRAME, ModelRole.PIXEL_SR) else [])
        configs = {name: _checked_config(root / name / "scheduler_config.json", SCHEDULER_NUMBERS) for name in schedulers}
        return cls.of_configs(
            stage,
            unet,
            configs.get("image_noising_scheduler"),
            _checked_config(root / "vae" / "config.json", VAE_NUMBERS) if stage == ModelRole.LATENT_SR else None,
        )


UNET_NUMBERS = ("block_out_channels", "layers_per_block")
"""UNet config entries that must be positive whole numbers (or non-empty lists of them)."""
UNET_OPTIONAL_NUMBERS = ("attention_head_dim",)
SCHEDULER_NUMBERS = ("num_train_timesteps",)
VAE_NUMBERS = ("block_out_channels",)


def _positive_whole(value: object) -> bool:
    values = value if isinstance(value, list) and value else [value]
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


def _checked_config(path: Path, numbers: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config at ``path``, after checking that each of ``numbers`` (and of ``optional`` it has) is a positive
    whole number or a non-empty list of them."""
    config = read_json(path)
    bad = [f"{name}: {config.get(name, 'missing')!r}" for name in numbers if not _positive_whole(config.get(name))]
    bad += [f"{name}: {config[name]!r}" for name in optional if name in config and not _positive_whole(config[name])]
    if bad:
        raise CorruptCheckpointError(
            f"{path} holds {', '.join(bad)}, where positive whole numbers are expected; the config is damaged. "
            "Download the checkpoint again"
        )
    return config


def _multiple(setting: str, value: int, steps: Mapping[str, int]) -> list[Problem]:
    """``value`` must be a multiple of every model's step in ``steps`` (model description -> step)."""
    failing = [who for who, step in steps.items() if value % step]
    if not failing:
        return []
    multiple = math.lcm(*steps.values())
    nearest = max(multiple, (value + multiple // 2) // multiple * multiple)
    return [Problem(setting, f"must be a multiple of {multiple} for {' and '.join(failing)}, got {value}; the nearest is {nearest}")]


def model_problems(settings: CascadeSettings, limits: Mapping[ModelRole, ModelLimits]) -> list[Problem]:
    """What the models in ``limits`` cannot take: frame sizes off their size step, noise levels they lack."""
    kf, sr = settings.keyframes, settings.pixel_sr
    steps = {f"the {s.title} model": limits[s].size_multiple for s in (ModelRole.KEYFRAMES, ModelRole.INTERPOLATION) if s in limits}
    for stage in (ModelRole.FIRST_FRAME, ModelRole.PIXEL_SR):
        if stage in limits:
            multiple = limits[stage].size_multiple
            who = f"the {stage.title} model ({sr.scale}x the size must be a multiple of {multiple})"
            steps[who] = multiple // math.gcd(multiple, sr.scale)
    problems = [p for side in ("width", "height") for p in _multiple(f"keyframes.{side}", getattr(kf, side), steps)]
    for stage, noise_level in ((ModelRole.FIRST_FRAME, settings.first_frame.noise_level), (ModelRole.PIXEL_SR, sr.noise_level)):
        levels = limits[stage].noise_levels if stage in limits else None
        if levels is not None and noise_level >= levels:
            problems.append(
                Problem(
                    f"{stage.value}.noise_level",
                    f"must be below {levels}, the levels of the {stage.title} noising scheduler, got {noise_level}",
                )
            )
    vae_scale = limits[ModelRole.LATENT_SR].vae_scale if ModelRole.LATENT_SR in limits else None
    if vae_scale is not None:
        for side in ("width", "height"):
            problems += _multiple(f"latent_sr.{side}", getattr(settings.latent_sr, side), {"the stage-4 VAE": vae_scale})
    return problems


@dataclass(frozen=True)
class _Work:
    """The largest UNet call of a stage and its output video, in frames and pixels."""

    frames: int
    height: int
    width: int
    output_frames: int
    output_height: int
    output_width: int
    guided: bool
    advice: str


def _work(settings: CascadeSettings, limits: Mapping[ModelRole, ModelLimits], stage: ModelRole, frames: int) -> _Work:
    kf, sr, lsr = settings.keyframes, settings.pixel_sr, settings.latent_sr
    big_h, big_w = kf.height * sr.scale, kf.width * sr.scale
    if stage == ModelRole.KEYFRAMES:
        return _Work(kf.num_frames, kf.height, kf.width, kf.num_frames, kf.height, kf.width, kf.guidance > 1, "fewer keyframes")
    if stage == ModelRole.INTERPOLATION:
        it = settings.interpolation
        return _Work(it.frames_between + 2, kf.height, kf.width, frames, kf.height, kf.width, it.guidance > 1, "fewer frames")
    if stage == ModelRole.FIRST_FRAME:
        return _Work(1, big_h, big_w, 1, big_h, big_w, settings.first_frame.guidance > 1, "smaller keyframes")
    if stage == ModelRole.PIXEL_SR:
        window = min(sr.window, frames)
        return _Work(window, big_h, big_w, frames, big_h, big_w, sr.guidance > 1, "a smaller pixel_sr.window or fewer frames")
    scale = limits[stage].vae_scale or 1
    window = min(lsr.frame_window or frames, frames)
    return _Work(
        window,
        -(-lsr.height // scale),
        -(-lsr.width // scale),
        frames,
        lsr.height,
        lsr.width,
        lsr.guidance > 1,
        "latent_sr.frame_window (frames per UNet call) or fewer frames",
    )


def _frames(settings: CascadeSettings, limits: Mapping[ModelRole, ModelLimits]) -> int:
    """Frames of the video stages 2-4 work on."""
    kf = settings.keyframes
    return interpolated_length(kf.num_frames, settings.interpolation.frames_between) if ModelRole.INTERPOLATION in limits else kf.num_frames


def stage_memory_bytes(
    settings: CascadeSettings,
    limits: Mapping[ModelRole, ModelLimits],
    stage: ModelRole,
    dtype: torch.dtype,
    batch: int = 1,
    split_guidance: bool = False,
) -> int:
    """A lower bound of the memory ``stage`` needs on its device: its output video and one UNet call's
    full-resolution activations (:mod:`show1_core.footprint`); with ``split_guidance`` a guided call
    holds one video instead of two."""
    work = _work(settings, limits, stage, _frames(settings, limits))
    itemsize = torch.empty((), dtype=dtype).element_size()
    videos = batch * (2 if work.guided and not split_guidance else 1)
    model = limits[stage]
    activations = unet_activation_bytes(model.features, model.layers, videos, work.frames, work.height, work.width, itemsize)
    return activations + video_bytes(batch, work.output_frames, work.output_height, work.output_width, itemsize)


def memory_problems(
    settings: CascadeSettings,
    limits: Mapping[ModelRole, ModelLimits],
    device: torch.device,
    dtype: torch.dtype,
    batch: int = 1,
    split_guidance: bool = False,
) -> list[Problem]:
    """Stages whose memory lower bound exceeds what ``device`` has (nothing when that cannot be read)."""
    available = device_memory_bytes(device)
    if available is None:
        return []
    problems = []
    for stage in limits:
        need = stage_memory_bytes(settings, limits, stage, dtype, batch, split_guidance)
        if need > available:
            work = _work(settings, limits, stage, _frames(settings, limits))
            problems.append(
                Problem(
                    None,
                    f"the {stage.title} needs at least {gib(need)} at {work.output_width}x{work.output_height} with "
                    f"{work.output_frames} frames (its output and the activations of one UNet call of {work.frames} frames), "
                    f"more than the {gib(available)} the {device} device has; use a smaller size, {work.advice}",
                )
            )
    return problems


def validate_cascade(
    settings: CascadeSettings,
    limits: Mapping[ModelRole, ModelLimits],
    stages: int = 4,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    split_guidance: bool = False,
) -> None:
    """Refuse, with every problem at once, settings the first ``stages`` stages cannot run with.

    ``limits`` holds the models that will run (the IF-II-L first frame only when it is used);
    with ``device``, each stage's memory lower bound is compared with the device's memory
    (guided calls counted as one video with ``split_guidance``).
    Raises :class:`~show1_core.errors.InvalidSettingsError`.
    """
    raise_problems(settings_problems(settings, stages, first_frame_model=ModelRole.FIRST_FRAME in limits))
    problems = model_problems(settings, limits)
    if device is not None and not problems:
        problems = memory_problems(settings, limits, torch.device(device), dtype, split_guidance=split_guidance)
    raise_problems(problems)
