"""What a motion LoRA adapts: the projections of the temporal attention layers, and nothing else.

Show-1's video UNets interleave spatial layers (resnets, spatial attention) with temporal ones
(temporal convolutions, temporal attention). Motion customisation trains low-rank adapters on
the query/key/value/output projections of the temporal attention only (the temporal transformers
:class:`~show1_core.models.Show1UNet` names in ``_temporal_attention_modules``), so appearance
and text alignment, which live in the spatial layers, stay as they are.
"""

from __future__ import annotations

import hashlib
import json

from torch import nn

from ..errors import InputError
from ..loading.registry import ModelRole
from ..models import Show1UNet
from ..settings import TRAINABLE_STAGE_NAMES

TRAINABLE_STAGES = tuple(ModelRole(name) for name in TRAINABLE_STAGE_NAMES)
"""Stages a motion LoRA can be trained for: the two that decide the motion."""
PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
_PROJECTION_ENDS = tuple(f".{p}" for p in PROJECTIONS)


def temporal_attention_targets(unet: nn.Module) -> list[str]:
    """Names of the temporal-attention projection layers (``nn.Linear``) of a Show-1 UNet, in model order."""
    targets = [name for name, module in unet.named_modules() if isinstance(module, nn.Linear) and is_temporal_attention_target(name)]
    if not targets:
        raise InputError(f"{type(unet).__name__} has no temporal attention layers; motion LoRAs need a Show-1 video UNet")
    return targets


def is_temporal_attention_target(name: str) -> bool:
    """Whether a module name is one a motion LoRA may adapt (a temporal-attention projection)."""
    return Show1UNet.in_temporal_transformer(name) and name.endswith(_PROJECTION_ENDS)


def unet_fingerprint(unet: nn.Module) -> str:
    """A short hash of the UNet's architecture (its config), identical for every copy of one checkpoint."""
    config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_trainable_stage(stage: ModelRole) -> None:
    """Refuse stages whose motion a LoRA does not customise."""
    if stage not in TRAINABLE_STAGES:
        raise InputError(f"motion LoRAs adapt the {' or the '.join(s.title for s in TRAINABLE_STAGES)} model, not the {stage.title} model")
