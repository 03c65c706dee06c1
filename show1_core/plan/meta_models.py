"""The released models built on the ``meta`` device: their real structure and sizes, no weights.

Built from the configs shipped with show1 (``loading/known_configs``), so a plan needs neither
a download nor memory for weights. fp8 weight storage is applied as a real run applies it; the
other speed options that change how weights move (block streaming, compilation) are counted by
the planner instead. Step caching is left out: which steps a cache skips is known only while a
run computes, so a plan counts every step in full.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn

from ..loading.components import SCHEDULERS, load_scheduler, read_json
from ..loading.registry import CHECKPOINT_FOR_STAGE, KNOWN_CHECKPOINTS, T5_CHECKPOINT, ModelRole
from ..loading.stage_model import StageModel
from ..models import Show1UNet
from ..settings import SpeedSettings, StageCaches
from ..speed.fp8 import store_in_fp8
from ..text import EncoderKind

META = torch.device("meta")


def _on_meta(build, dtype: torch.dtype) -> nn.Module:
    with META:
        return build().to(dtype).eval().requires_grad_(False)


def meta_stage_from_configs(
    role: ModelRole, unet: dict, schedulers: dict[str, SchedulerMixin], vae: dict | None, dtype: torch.dtype, speed: SpeedSettings
) -> StageModel:
    """A stage model on ``meta`` from its UNet (and VAE) config and its schedulers, with fp8 storage when ``speed`` asks."""
    unet_class = UNet2DConditionModel if unet["down_block_types"][0].endswith("2D") else Show1UNet
    model = _on_meta(lambda: unet_class.from_config(unet), dtype)
    if speed.fp8_weights:
        store_in_fp8(model, dtype)
    uncached = replace(speed, cache=StageCaches())
    stage = StageModel(role, model, schedulers["scheduler"], schedulers.get("image_noising_scheduler"), speed=uncached)
    if vae is not None:
        stage.vae = _on_meta(lambda: AutoencoderKL.from_config(vae), dtype)
    return stage


def meta_stage_model(role: ModelRole, dtype: torch.dtype, speed: SpeedSettings = SpeedSettings()) -> StageModel:
    """The released model of ``role`` (UNet, schedulers, and the VAE for stage 4) on ``meta`` in ``dtype``."""
    checkpoint = CHECKPOINT_FOR_STAGE[role]
    schedulers = {
        name: SCHEDULERS[cfg["_class_name"]].from_config(cfg)
        for name in checkpoint.components
        if name.endswith("scheduler")
        for cfg in [checkpoint.expected_config(name)]
    }
    vae = checkpoint.expected_config("vae") if role == ModelRole.LATENT_SR else None
    return meta_stage_from_configs(role, checkpoint.expected_config("unet"), schedulers, vae, dtype, speed)


def meta_stage_model_of_folder(folder: Path, role: ModelRole, dtype: torch.dtype, speed: SpeedSettings = SpeedSettings()) -> StageModel:
    """The model of a checkpoint folder, built on ``meta`` from its config files (no weights are read)."""
    folder = Path(folder)
    schedulers = {name: load_scheduler(folder / name) for name in ("scheduler", "image_noising_scheduler") if (folder / name).is_dir()}
    vae = read_json(folder / "vae" / "config.json") if role == ModelRole.LATENT_SR else None
    return meta_stage_from_configs(role, read_json(folder / "unet" / "config.json"), schedulers, vae, dtype, speed)


def meta_text_encoder(kind: EncoderKind, dtype: torch.dtype, fp8_weights: bool = False, folder: Path | None = None) -> nn.Module:
    """The T5-XXL (stages 1-3) or CLIP (stage 4) text encoder on ``meta`` in ``dtype``: the released one, or the one
    whose ``text_encoder/config.json`` is in checkpoint ``folder``."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    config_class, model_class = (T5Config, T5EncoderModel) if kind == EncoderKind.T5 else (CLIPTextConfig, CLIPTextModel)
    if folder is not None:
        config = config_class.from_dict(read_json(Path(folder) / "text_encoder" / "config.json"))
    else:
        checkpoint = T5_CHECKPOINT if kind == EncoderKind.T5 else KNOWN_CHECKPOINTS["show-1-sr2"]
        config = config_class.from_dict(checkpoint.expected_config("text_encoder"))
    encoder = _on_meta(lambda: model_class(config), dtype)
    if fp8_weights:
        store_in_fp8(encoder, dtype)
    return encoder


def module_bytes(module: nn.Module | None) -> int:
    """Bytes of a module's parameters and buffers as stored (fp8 storage counts one byte a weight)."""
    if module is None:
        return 0
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
