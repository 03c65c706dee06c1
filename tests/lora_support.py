"""Motion LoRA files with random (non-zero) weights for a loaded stage model, for the tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from show1_core.loading import StageModel
from show1_core.motion_lora import MotionLoraInfo, save_motion_lora, temporal_attention_targets, unet_fingerprint

RANK = 4


def lora_weights(unet, rank: int = RANK, seed: int = 0, targets: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Random adapter weights for ``targets`` (default: every temporal-attention projection of ``unet``)."""
    generator = torch.Generator().manual_seed(seed)
    modules = dict(unet.named_modules())
    weights = {}
    for name in targets or temporal_attention_targets(unet):
        layer = modules[name]
        weights[f"{name}.lora_A.weight"] = torch.randn(rank, layer.in_features, generator=generator) * 0.3
        weights[f"{name}.lora_B.weight"] = torch.randn(layer.out_features, rank, generator=generator) * 0.3
    return weights


def info_for(model: StageModel, **changes) -> MotionLoraInfo:
    """Metadata of a rank-4 LoRA on every temporal-attention projection of ``model``, with ``changes``."""
    info = MotionLoraInfo(
        stage=model.stage,
        base_checkpoint="tiny",
        base_fingerprint=unet_fingerprint(model.unet),
        rank=RANK,
        alpha=float(RANK),
        target_modules=tuple(temporal_attention_targets(model.unet)),
        steps=10,
        prompts=("a square moving right",),
        frames=8,
        height=8,
        width=16,
    )
    return replace(info, **changes)


def write_lora(path: Path, model: StageModel, seed: int = 0, **changes) -> Path:
    """A random motion LoRA file for ``model`` at ``path``."""
    return save_motion_lora(path, lora_weights(model.unet, seed=seed), info_for(model, **changes))
