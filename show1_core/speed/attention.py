"""Attention through diffusers' attention dispatcher (flash-attn, SageAttention, xformers, PyTorch SDPA).

Show-1's UNets use diffusers' classic attention processors, which call PyTorch's
``scaled_dot_product_attention`` directly. To run them on another kernel, every processor of a
UNet is replaced by its dispatching twin below: the same projections, then
``dispatch_attention_fn`` with the chosen backend instead of the SDPA call. With the ``native``
backend the twin calls the same SDPA on the same tensors, so the numbers do not change (the
tests check this to 1e-10 in float64); the other kernels round differently.
"""

from __future__ import annotations

import importlib.util

import torch
from diffusers.models.attention_dispatch import AttentionBackendName, dispatch_attention_fn
from diffusers.models.attention_processor import Attention, AttnAddedKVProcessor2_0, AttnProcessor2_0
from torch import nn

from ..errors import InputError
from ..models.attention import BatchChunkedProcessor

PACKAGES = {
    "flash": ("flash_attn", "pip install flash-attn --no-build-isolation"),
    "sage": ("sageattention", "pip install sageattention"),
    "xformers": ("xformers", "pip install xformers"),
}
"""Backends that need a package: (module it installs, the command that installs it). They also need a CUDA GPU."""


class _Dispatching:
    """Shared by the dispatching processors: the backend, where diffusers' ``set_attention_backend`` looks for it."""

    def __init__(self, backend: str):
        self._attention_backend = AttentionBackendName(backend)

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Attention over ``(batch, tokens, heads, head_dim)`` tensors, on the configured backend."""
        return dispatch_attention_fn(query, key, value, backend=self._attention_backend)


class DispatchAttnProcessor(_Dispatching):
    """:class:`~diffusers.models.attention_processor.AttnProcessor2_0` with its SDPA call dispatched.

    Covers what Show-1's models use: self- and cross-attention with optional group norm, residual
    and output rescaling, on ``(batch, tokens, channels)`` or ``(batch, channels, h, w)`` input.
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The attention layer's output for ``hidden_states``."""
        _refuse_unused_features(attn, attention_mask)
        residual = hidden_states
        image_shape = hidden_states.shape if hidden_states.ndim == 4 else None
        if image_shape is not None:
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        batch = hidden_states.shape[0]
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (t.view(batch, -1, attn.heads, head_dim) for t in (query, key, value))
        hidden_states = self._attend(query, key, value).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if image_shape is not None:
            hidden_states = hidden_states.transpose(-1, -2).reshape(image_shape)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


class DispatchAddedKVProcessor(_Dispatching):
    """:class:`~diffusers.models.attention_processor.AttnAddedKVProcessor2_0` (DeepFloyd IF's spatial attention,
    keys and values of the image plus the projected text) with its SDPA call dispatched."""

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The attention layer's output for the image ``hidden_states`` ``(batch, channels, h, w)``."""
        _refuse_unused_features(attn, attention_mask)
        residual = hidden_states
        hidden_states = hidden_states.flatten(2).transpose(1, 2)
        batch = hidden_states.shape[0]
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        heads = attn.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, -1, heads, t.shape[-1] // heads)

        query = split(attn.to_q(hidden_states))
        key, value = split(attn.add_k_proj(context)), split(attn.add_v_proj(context))
        if not attn.only_cross_attention:
            key = torch.cat([key, split(attn.to_k(hidden_states))], dim=1)
            value = torch.cat([value, split(attn.to_v(hidden_states))], dim=1)
        hidden_states = self._attend(query, key, value).reshape(batch, -1, residual.shape[1])
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        return hidden_states.transpose(-1, -2).reshape(residual.shape) + residual


DISPATCHING = {AttnProcessor2_0: DispatchAttnProcessor, AttnAddedKVProcessor2_0: DispatchAddedKVProcessor}
"""The dispatching twin of each classic processor Show-1's models use."""


def _refuse_unused_features(attn: Attention, attention_mask: torch.Tensor | None) -> None:
    """Masks, spatial norms and q/k norms are not used by any Show-1 model, so the twins do not implement them."""
    if attention_mask is not None or attn.spatial_norm is not None or attn.norm_q is not None or attn.norm_k is not None:
        raise NotImplementedError("the dispatching attention processors support no attention masks, spatial norms or q/k norms")


def check_attention_backend(backend: str, device: torch.device) -> None:
    """Refuse a backend whose package is missing (with the command that installs it) or that cannot run on ``device``."""
    if backend not in PACKAGES:
        return
    module, command = PACKAGES[backend]
    if importlib.util.find_spec(module) is None:
        raise InputError(f"the {backend!r} attention backend needs the {module} package, which is not installed: {command}")
    if device.type != "cuda":
        raise InputError(f"the {backend!r} attention backend runs on CUDA GPUs only, not on {device.type}; use 'sdpa' there")
    from diffusers.models.attention_dispatch import _check_attention_backend_requirements

    try:  # diffusers' own check of the package version (its message names the version it needs)
        _check_attention_backend_requirements(AttentionBackendName(backend))
    except RuntimeError as err:
        raise InputError(f"{err} ({command.replace('install', 'install -U', 1)})") from err


def set_attention_backend(model: nn.Module, backend: str, device: torch.device) -> int:
    """Run every attention layer of ``model`` on ``backend`` (``sdpa`` leaves the model as it is).

    Returns how many layers now dispatch. Temporal attentions keep their batch chunking
    (:mod:`show1_core.models.attention`) around the new processor.
    """
    if backend == "sdpa":
        return 0
    check_attention_backend(backend, device)
    count = 0
    for attention in (m for m in model.modules() if isinstance(m, Attention)):
        processor = attention.processor
        chunked = isinstance(processor, BatchChunkedProcessor)
        inner = processor.inner if chunked else processor
        twin = DISPATCHING.get(type(inner))
        if twin is None:
            raise InputError(f"attention processor {type(inner).__name__} cannot use the {backend!r} backend; use 'sdpa'")
        replacement = twin(backend)
        attention.set_processor(BatchChunkedProcessor(replacement, processor.max_batch) if chunked else replacement)
        count += 1
    return count
