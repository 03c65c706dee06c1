"""Applying a stage model's speed settings: attention backend, fp8 weights, block streaming, attention caches, compilation."""

from __future__ import annotations

import torch

from ..errors import InputError
from ..loading.stage_model import StageModel
from ..settings import SpeedSettings
from .attention import set_attention_backend
from .compile import compile_repeated_blocks
from .fp8 import store_in_fp8
from .layer_cache import install_layer_cache
from .streaming import stream_blocks


def apply_speed(model: StageModel, speed: SpeedSettings, device: torch.device | str) -> StageModel:
    """Make ``model``'s UNet run as ``speed`` says on ``device``, in place; returns ``model``.

    Apply it once, to a freshly loaded model, before it runs: the attention processors change
    first, then the weights' storage, then the blocks' streaming hooks, then the attention cache
    hooks of the model's ``cache`` (``pab``, ``taylorseer``), and the compiled blocks wrap all of
    that. ``split_guidance`` and the whole-step cache are read by the stages at run time. Default
    settings change nothing.
    """
    if model.speed != SpeedSettings():
        raise InputError("speed settings were already applied to this model; load it again to change them")
    device = torch.device(device)
    unet = model.unet
    set_attention_backend(unet, speed.attention, device)
    if speed.fp8_weights:
        store_in_fp8(unet, compute_dtype=unet.dtype)
    if speed.stream_blocks:
        stream_blocks(unet, device)
    cache = speed.cache.of(model.stage.value)
    if cache.method in ("pab", "taylorseer"):
        install_layer_cache(unet, cache)
    if speed.compile:
        compile_repeated_blocks(unet, speed.compile_backend)
    model.speed = speed
    return model
