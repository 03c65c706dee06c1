"""What each model allows, read from its configs: size steps, noise levels, the VAE's scale.

:class:`ModelLimits` reads a checkpoint folder's config files (nothing is loaded) or a loaded
model; :func:`model_problems` finds the settings those models cannot take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import CorruptCheckpointError, WrongStageError
from ..footprint import downscale_factor
from ..loading.components import read_json
from ..loading.detect import describe_stage, stage_of_unet_config
from ..loading.registry import ModelRole
from ..loading.stage_model import StageModel, pipeline_folders
from ..settings import CascadeSettings
from .ranges import Problem


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
