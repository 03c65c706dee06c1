"""Recognising which cascade stage a UNet checkpoint belongs to, from its config or its weights."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .registry import CHECKPOINT_FOR_STAGE, ModelRole


def stage_of_unet_config(config: Mapping[str, Any]) -> ModelRole | None:
    """Stage a UNet ``config.json`` belongs to, or ``None`` if it is no Show-1 UNet."""
    blocks = list(config.get("down_block_types") or [])
    in_channels = config.get("in_channels")
    noise_conditioned = config.get("class_embed_type") == "timestep"
    if blocks and all(b.endswith("2D") for b in blocks):
        return ModelRole.FIRST_FRAME if in_channels == 6 and noise_conditioned else None
    if not blocks or not all(b.endswith("3D") for b in blocks):
        return None
    if any(b in ("CrossAttnDownBlock3D", "DownBlock3D") for b in blocks):
        return ModelRole.LATENT_SR if in_channels == 4 else None
    if noise_conditioned:
        return ModelRole.PIXEL_SR if in_channels == 6 else None
    return {3: ModelRole.KEYFRAMES, 7: ModelRole.INTERPOLATION}.get(in_channels)


def stage_of_state_dict(state: Mapping[str, torch.Tensor]) -> ModelRole | None:
    """Stage a UNet state dict looks like, from its input width and telltale layers."""
    conv_in = state.get("conv_in.weight")
    if conv_in is None or conv_in.ndim != 4:
        return None
    in_channels = conv_in.shape[1]
    video = any(".temp_convs." in k for k in state)
    noise_conditioned = any(k.startswith("class_embedding.") for k in state)
    if not video:
        return ModelRole.FIRST_FRAME if in_channels == 6 and noise_conditioned else None
    if in_channels == 4:
        return ModelRole.LATENT_SR
    if noise_conditioned:
        return ModelRole.PIXEL_SR if in_channels == 6 else None
    return {3: ModelRole.KEYFRAMES, 7: ModelRole.INTERPOLATION}.get(in_channels)


def describe_stage(stage: ModelRole | None) -> str:
    """``'pixel super-resolution (stage 3) (showlab/show-1-sr1)'`` or a plain 'not a Show-1 UNet'."""
    if stage is None:
        return "no Show-1 stage this project knows"
    return f"the {stage.title} model ({CHECKPOINT_FOR_STAGE[stage].repo_id})"
