"""Loading everything one cascade stage needs from a checkpoint folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn

from ..errors import InputError, MissingFilesError, WrongStageError
from ..settings import SpeedSettings
from .components import load_scheduler, load_unet, load_vae, read_json
from .detect import describe_stage, stage_of_unet_config
from .registry import CHECKPOINT_FOR_STAGE, ModelRole

NOISE_CONDITIONED = (ModelRole.FIRST_FRAME, ModelRole.PIXEL_SR)


@dataclass
class StageModel:
    """The models of one stage: its UNet and scheduler, plus the noising scheduler (stage 3)
    or the VAE (stage 4), and the speed settings its UNet runs with (:func:`~show1_core.speed.apply_speed`)."""

    stage: ModelRole
    unet: nn.Module
    scheduler: SchedulerMixin
    noising_scheduler: SchedulerMixin | None = None
    vae: AutoencoderKL | None = None
    source: Path | None = None
    speed: SpeedSettings = field(default_factory=SpeedSettings)

    def require(self, stage: ModelRole) -> None:
        """Raise :class:`WrongStageError` unless this is the model of ``stage``."""
        if self.stage != stage:
            raise WrongStageError(
                f"the {stage.title} needs {CHECKPOINT_FOR_STAGE[stage].repo_id}, but it was given {describe_stage(self.stage)}"
            )

    def fresh_scheduler(self) -> SchedulerMixin:
        """A new scheduler with this stage's config, so a run never inherits another run's state."""
        return type(self.scheduler).from_config(self.scheduler.config)

    def modules(self) -> list[nn.Module]:
        """The torch modules of this stage that the memory policy moves (a UNet that streams its blocks moves itself)."""
        unet = None if self.speed.stream_blocks else self.unet
        return [m for m in (unet, self.vae) if m is not None]


def pipeline_folders(path: Path) -> tuple[Path, Path]:
    """Split a reference into (pipeline folder, unet folder); accepts either one."""
    if (path / "unet").is_dir():
        return path, path / "unet"
    if (path / "config.json").is_file():
        return path.parent, path
    raise MissingFilesError(
        f"{path} is neither a Show-1 checkpoint folder (with unet/ and scheduler/ subfolders) nor a unet folder "
        "(with config.json and weights)"
    )


def _scheduler_from(root: Path, name: str, stage: ModelRole) -> SchedulerMixin:
    folder = root / name
    if (folder / "scheduler_config.json").is_file():
        return load_scheduler(folder)
    raise MissingFilesError(
        f"{folder}/scheduler_config.json is missing; the {stage.title} checkpoint must include its {name} "
        f"(download {CHECKPOINT_FOR_STAGE[stage].repo_id} again)"
    )


def _stage_named(name: object) -> ModelRole:
    try:
        return ModelRole(name)
    except ValueError:
        raise InputError(f"unknown stage {name!r}; choose one of {', '.join(s.value for s in ModelRole)}") from None


def load_stage_model(
    path: Path | str, stage: ModelRole | str | None = None, dtype: torch.dtype = torch.float32, variant: str | None = None
) -> StageModel:
    """Load a stage from a local diffusers-format folder (or its ``unet/`` folder).

    Args:
        path: the checkpoint folder (``model_index.json`` + component subfolders) or one
            component folder; schedulers (and the VAE) come from its sibling folders.
        stage: the stage the caller expects (a :class:`ModelRole` or its name, e.g. ``"keyframes"``); a
            checkpoint of another stage raises :class:`WrongStageError` naming the stage it looks
            like. ``None`` accepts any.
        dtype: precision of the weights.
        variant: weight-file variant to prefer (e.g. ``"fp16"``).
    """
    if stage is not None and not isinstance(stage, ModelRole):
        stage = _stage_named(stage)
    root, unet_folder = pipeline_folders(Path(path).expanduser())
    found = stage_of_unet_config(read_json(unet_folder / "config.json"))
    if found is None:
        raise WrongStageError(f"{unet_folder} does not hold a Show-1 or IF-II-L UNet")
    unet = load_unet(unet_folder, expected_stage=stage or found, dtype=dtype, variant=variant)
    model = StageModel(stage=found, unet=unet, scheduler=_scheduler_from(root, "scheduler", found), source=root)
    if found in NOISE_CONDITIONED:
        model.noising_scheduler = _scheduler_from(root, "image_noising_scheduler", found)
    if found == ModelRole.LATENT_SR:
        model.vae = load_vae(root / "vae", dtype=dtype, variant=variant)
    return model
