"""The released models built on the ``meta`` device: their real structure and sizes, no weights.

Built from the configs shipped with show1 (``loading/known_configs``), so a plan needs neither
a download nor memory for weights. fp8 weight storage is applied as a real run applies it; the
other speed options that change how weights move (block streaming, compilation) are counted by
the planner instead.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch import nn

from ..loading.components import SCHEDULERS
from ..loading.registry import CHECKPOINT_FOR_STAGE, KNOWN_CHECKPOINTS, T5_CHECKPOINT, ModelRole
from ..loading.stage_model import StageModel
from ..models import Show1UNet
from ..settings import SpeedSettings
from ..speed.fp8 import store_in_fp8
from ..text import EncoderKind

META = torch.device("meta")


def _on_meta(build, dtype: torch.dtype) -> nn.Module:
    with META:
        return build().to(dtype).eval().requires_grad_(False)


def meta_stage_model(role: ModelRole, dtype: torch.dtype, speed: SpeedSettings = SpeedSettings()) -> StageModel:
    """The released model of ``role`` (UNet, schedulers, and the VAE for stage 4) on ``meta`` in ``dtype``."""
    checkpoint = CHECKPOINT_FOR_STAGE[role]
    config = checkpoint.expected_config("unet")
    unet_class = UNet2DConditionModel if config["down_block_types"][0].endswith("2D") else Show1UNet
    unet = _on_meta(lambda: unet_class.from_config(config), dtype)
    if speed.fp8_weights:
        store_in_fp8(unet, dtype)
    schedulers = {
        name: SCHEDULERS[cfg["_class_name"]].from_config(cfg)
        for name in checkpoint.components
        if name.endswith("scheduler")
        for cfg in [checkpoint.expected_config(name)]
    }
    model = StageModel(role, unet, schedulers["scheduler"], schedulers.get("image_noising_scheduler"), speed=speed)
    if role == ModelRole.LATENT_SR:
        model.vae = _on_meta(lambda: AutoencoderKL.from_config(checkpoint.expected_config("vae")), dtype)
    return model


def meta_text_encoder(kind: EncoderKind, dtype: torch.dtype, fp8_weights: bool = False) -> nn.Module:
    """The released T5-XXL (stages 1-3) or CLIP (stage 4) text encoder on ``meta`` in ``dtype``."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    if kind == EncoderKind.T5:
        config = T5Config.from_dict(T5_CHECKPOINT.expected_config("text_encoder"))
        encoder = _on_meta(lambda: T5EncoderModel(config), dtype)
    else:
        config = CLIPTextConfig.from_dict(KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("text_encoder"))
        encoder = _on_meta(lambda: CLIPTextModel(config), dtype)
    if fp8_weights:
        store_in_fp8(encoder, dtype)
    return encoder


def module_bytes(module: nn.Module | None) -> int:
    """Bytes of a module's parameters and buffers as stored (fp8 storage counts one byte a weight)."""
    if module is None:
        return 0
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
