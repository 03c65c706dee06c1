"""Building each model component from its folder: config first, then weights read by us.

Models are built on the ``meta`` device (no memory, no random initialisation) and the
weights read from disk are assigned in place rather than copied into a second model.
Every mismatch between a config and its weights (or a checkpoint of the wrong stage)
becomes a clear :class:`~show1_core.errors.CheckpointError`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn

from ..errors import CorruptCheckpointError, MissingFilesError, StateDictMismatchError, WrongStageError
from ..models import Show1UNet
from ..schedulers import OriginalDPMSolverMultistepScheduler
from .detect import describe_stage, stage_of_state_dict, stage_of_unet_config
from .registry import Stage
from .weights import find_weights, read_state_dict

SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "DPMSolverMultistepScheduler": OriginalDPMSolverMultistepScheduler,
    "DDPMScheduler": DDPMScheduler,
    "DDIMScheduler": DDIMScheduler,
}
"""Scheduler classes by the name released configs give; DPM-Solver++ with the arithmetic Show-1 ran (0.19.3)."""
IGNORED_UNEXPECTED_SUFFIXES = ("position_ids",)
TEXT_MODEL_PREFIX = "text_model."
"""CLIP text weights saved by transformers 4 carry this prefix; transformers 5 models do not."""


def read_json(path: Path) -> dict[str, Any]:
    """Read a config file, turning absence or bad JSON into a clear checkpoint error."""
    path = Path(path)
    if not path.is_file():
        raise MissingFilesError(f"{path} is missing; the checkpoint folder is incomplete. Download it again.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CorruptCheckpointError(f"{path} is not valid JSON ({err}); download it again") from err


def _tied_groups(model: nn.Module) -> list[list[str]]:
    groups: dict[int, list[str]] = defaultdict(list)
    for name, param in model.named_parameters(remove_duplicate=False):
        groups[id(param)].append(name)
    return [names for names in groups.values() if len(names) > 1]


def _retie(model: nn.Module, groups: list[list[str]]) -> None:
    for names in groups:
        source = model.get_parameter(names[0])
        for name in names[1:]:
            owner, _, attr = name.rpartition(".")
            setattr(model.get_submodule(owner), attr, source)


def build_on_meta(build, folder: Path, what: str):
    """Run ``build()`` on the meta device, reporting configs the model class refuses as a checkpoint error."""
    try:
        with init_empty_weights():
            return build()
    except (ValueError, TypeError, KeyError) as err:
        raise CorruptCheckpointError(f"{folder}/config.json does not describe a usable {what}: {err}") from err


def assign_weights(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> nn.Module:
    """Assign a state dict to a model built on ``meta``, refusing any missing, extra or mis-shaped key."""
    ties = _tied_groups(model)
    for names in ties:  # a tied weight may be stored under any one of its names
        present = next((n for n in names if n in state), None)
        if present is not None:
            for name in names:
                state[name] = state[present]
    expected = {k: v.shape for k, v in model.state_dict().items()}
    state = {k: v for k, v in state.items() if not (k not in expected and k.endswith(IGNORED_UNEXPECTED_SUFFIXES))}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    mis_shaped = sorted(k for k in expected.keys() & state.keys() if tuple(state[k].shape) != tuple(expected[k]))
    if missing or unexpected or mis_shaped:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if mis_shaped:
            k = mis_shaped[0]
            problems.append(
                f"{len(mis_shaped)} with the wrong shape (e.g. {k}: file {tuple(state[k].shape)}, model {tuple(expected[k])})"
            )
        looks_like = stage_of_state_dict(state)
        hint = f" The weights look like {describe_stage(looks_like)}." if looks_like else ""
        raise StateDictMismatchError(
            f"the weights in {source} do not fit the model its config describes: {'; '.join(problems)}.{hint} "
            "Make sure the config.json and the weight files come from the same checkpoint."
        )
    model.load_state_dict(state, strict=True, assign=True)
    _retie(model, ties)
    return model.eval().requires_grad_(False)


def align_prefix(state: dict[str, torch.Tensor], expected: set[str], prefix: str) -> dict[str, torch.Tensor]:
    """Add or strip a key prefix when the checkpoint and the installed library disagree on it."""
    has = any(k.startswith(prefix) for k in state)
    wants = any(k.startswith(prefix) for k in expected)
    if has and not wants:
        return {k.removeprefix(prefix): v for k, v in state.items()}
    if wants and not has:
        return {prefix + k: v for k, v in state.items()}
    return state


def _cast_keeping_fp32(state: dict[str, torch.Tensor], dtype: torch.dtype, keep_fp32: set[str]) -> dict[str, torch.Tensor]:
    def target(key: str, tensor: torch.Tensor) -> torch.dtype:
        if dtype == torch.float16 and any(f".{m}." in f".{key}" for m in keep_fp32):
            return torch.float32
        return dtype

    return {k: v.to(target(k, v)) if v.is_floating_point() else v for k, v in state.items()}


def load_unet(folder: Path, expected_stage: Stage | None = None, dtype: torch.dtype = torch.float32, variant: str | None = None) -> nn.Module:
    """Load a Show-1 UNet (or the IF-II-L 2-D UNet) from a ``unet/`` folder.

    Raises :class:`WrongStageError` if ``expected_stage`` is given and the config belongs to
    another stage, naming the stage it looks like.
    """
    folder = Path(folder)
    config = read_json(folder / "config.json")
    found = stage_of_unet_config(config)
    if expected_stage is not None and found != expected_stage:
        raise WrongStageError(
            f"{folder} holds {describe_stage(found)}, but the {expected_stage.title} model was expected. "
            f"Pick the checkpoint made for that stage."
        )
    cls = UNet2DConditionModel if found == Stage.FIRST_FRAME else Show1UNet
    model = build_on_meta(lambda: cls.from_config(config), folder, cls.__name__)
    state = read_state_dict(find_weights(folder, variant=variant), dtype=dtype)
    return assign_weights(model, state, folder)


def load_vae(folder: Path, dtype: torch.dtype = torch.float32, variant: str | None = None) -> AutoencoderKL:
    """Load the stage-4 ``AutoencoderKL`` from a ``vae/`` folder."""
    folder = Path(folder)
    config = read_json(folder / "config.json")
    model = build_on_meta(lambda: AutoencoderKL.from_config(config), folder, "AutoencoderKL")
    return assign_weights(model, read_state_dict(find_weights(folder, variant=variant), dtype=dtype), folder)


def load_text_encoder(folder: Path, dtype: torch.dtype = torch.float32, variant: str | None = None) -> nn.Module:
    """Load a T5 encoder (stages 1-3) or CLIP text model (stage 4) from a ``text_encoder/`` folder."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    folder = Path(folder)
    config = read_json(folder / "config.json")
    kinds = {"t5": (T5Config, T5EncoderModel), "clip_text_model": (CLIPTextConfig, CLIPTextModel)}
    if config.get("model_type") not in kinds:
        raise WrongStageError(
            f"{folder} holds a {config.get('model_type')!r} model; Show-1 uses a T5 encoder (stages 1-3) "
            "or a CLIP text model (stage 4)"
        )
    config_cls, model_cls = kinds[config["model_type"]]
    model = build_on_meta(lambda: model_cls(config_cls.from_dict(config)), folder, model_cls.__name__)
    model.tie_weights()  # building on meta unties shared embeddings; restore them before loading
    keep_fp32 = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    state = read_state_dict(find_weights(folder, variant=variant))
    if config["model_type"] == "clip_text_model":
        state = align_prefix(state, set(model.state_dict()), TEXT_MODEL_PREFIX)
    return assign_weights(model, _cast_keeping_fp32(state, dtype, keep_fp32), folder)


def load_scheduler(folder: Path) -> SchedulerMixin:
    """Build a scheduler from ``scheduler_config.json``, as the released diffusers version ran it.

    ``DPMSolverMultistepScheduler`` configs load as
    :class:`~show1_core.schedulers.OriginalDPMSolverMultistepScheduler` (diffusers 0.19.3's
    arithmetic, which Show-1 ran); configs from before ``final_sigmas_type`` existed end at
    ``sigma_min`` as 0.19.3 did, which is made explicit here.
    """
    folder = Path(folder)
    config = read_json(folder / "scheduler_config.json")
    name = config.get("_class_name")
    if name not in SCHEDULERS:
        raise CorruptCheckpointError(
            f"{folder}/scheduler_config.json names scheduler {name!r}; supported: {', '.join(SCHEDULERS)}"
        )
    overrides = {}
    if name == "DPMSolverMultistepScheduler" and "final_sigmas_type" not in config:
        overrides["final_sigmas_type"] = "sigma_min"
    return SCHEDULERS[name].from_config(config, **overrides)

