"""fp8 weight storage: weights kept as float8 e4m3fn, each layer cast up to compute while it runs.

diffusers' layerwise casting hooks every convolution, linear and embedding layer: its weights
stay in fp8 (one byte each, half of fp16/bf16) and are cast to the compute precision just
before the layer runs, and back after. The layers a model names in ``_skip_layerwise_casting_patterns``
(normalisation, for :class:`~show1_core.models.Show1UNet`) stay in the compute precision, and so do
the layers a model keeps in fp32 (T5's feed-forward outputs). The results differ from
the full-precision model by the rounding of the weights; docs/PERFORMANCE.md has the measured size.
"""

from __future__ import annotations

import torch
from diffusers.hooks import apply_layerwise_casting
from diffusers.hooks.layerwise_casting import DEFAULT_SKIP_MODULES_PATTERN
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

FP8 = torch.float8_e4m3fn


def store_in_fp8(model: nn.Module, compute_dtype: torch.dtype) -> None:
    """Keep ``model``'s layer weights in fp8 and compute in ``compute_dtype`` (in place)."""
    if isinstance(model, ModelMixin):
        model.enable_layerwise_casting(storage_dtype=FP8, compute_dtype=compute_dtype)
        return
    kept = tuple(getattr(model, "_keep_in_fp32_modules", None) or ())
    apply_layerwise_casting(model, FP8, compute_dtype, skip_modules_pattern=DEFAULT_SKIP_MODULES_PATTERN + kept)
