"""diffusers' attention caches on a stage UNet: Pyramid Attention Broadcast and TaylorSeer.

Both are diffusers hooks (``apply_pyramid_attention_broadcast``, ``apply_taylorseer_cache``) that
reuse (PAB) or extrapolate (TaylorSeer) an attention layer's output between denoising steps. Their
defaults look for a transformer's module names (``transformer_blocks``, ``temporal_transformer_blocks``);
here every ``Attention`` of the UNet is named to them exactly, spatial or temporal as the model
declares (:meth:`~show1_core.models.Show1UNet.in_temporal_transformer`). They are installed once,
when the speed settings are applied; :class:`LayerCacheLoop` gives each denoising loop fresh state
and keeps one state per guidance half and per frame window.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from diffusers.hooks import HookRegistry, PyramidAttentionBroadcastConfig, apply_pyramid_attention_broadcast
from diffusers.hooks.pyramid_attention_broadcast import PyramidAttentionBroadcastState
from diffusers.models.attention_processor import Attention
from torch import nn

from ..errors import InputError
from ..models import Show1UNet
from ..settings import CacheSettings

try:  # diffusers 0.42 keys a hook's state by a CacheContext; earlier versions by the context's name alone
    from diffusers.hooks.hooks import CacheContext
except ImportError:
    CacheContext = None

PAB_HOOK = "PyramidAttentionBroadcastHook"
TAYLORSEER_HOOK = "TaylorSeerCacheHook"
OUTSIDE_LOOP = -1
"""The step PAB sees outside a denoising loop: before every skip range, so a lone forward pass computes in full."""
NO_END = 10**9


def attention_names(unet: nn.Module) -> tuple[list[str], list[str]]:
    """Exact-match patterns of the UNet's spatial (with cross) and temporal ``Attention`` modules."""
    spatial, temporal = [], []
    for name, module in unet.named_modules():
        if isinstance(module, Attention):
            (temporal if Show1UNet.in_temporal_transformer(name) else spatial).append(f"^{re.escape(name)}$")
    return spatial, temporal


def install_layer_cache(unet: nn.Module, cache: CacheSettings) -> int:
    """Hook every attention layer of ``unet`` with the diffusers cache ``cache.method`` names; returns how many.

    Each hooked layer then runs outside ``torch.compile``'s graphs: a hook's step counter is Python
    state that compiled code would otherwise be specialised on, and recompiled for, at every step.
    """
    spatial, temporal = attention_names(unet)
    if cache.method == "pab":
        apply_pyramid_attention_broadcast(unet, _pab_config(cache, spatial, temporal))
    else:
        from diffusers.hooks.taylorseer_cache import apply_taylorseer_cache  # diffusers 0.36 or newer (checked with the settings)

        apply_taylorseer_cache(unet, _taylorseer_config(cache, spatial + temporal, unet.dtype))
    hooked = [module for module, _ in _hooks(unet, PAB_HOOK if cache.method == "pab" else TAYLORSEER_HOOK)]
    for module in hooked:
        module.forward = torch.compiler.disable(module.forward)
    return len(hooked)


def _pab_config(cache: CacheSettings, spatial: list[str], temporal: list[str]) -> PyramidAttentionBroadcastConfig:
    # PAB may reuse only while ``low < step < high``; show1 counts steps from ``start`` up to ``end`` excluded.
    steps = (cache.start - 1, NO_END if cache.end is None else cache.end)
    return PyramidAttentionBroadcastConfig(
        spatial_attention_block_skip_range=cache.interval,
        temporal_attention_block_skip_range=cache.interval,
        cross_attention_block_skip_range=cache.interval,
        spatial_attention_timestep_skip_range=steps,
        temporal_attention_timestep_skip_range=steps,
        cross_attention_timestep_skip_range=steps,
        spatial_attention_block_identifiers=tuple(spatial),
        temporal_attention_block_identifiers=tuple(temporal),
        cross_attention_block_identifiers=tuple(spatial),
        current_timestep_callback=lambda: OUTSIDE_LOOP,
    )


def _taylorseer_config(cache: CacheSettings, names: list[str], dtype: torch.dtype):
    from diffusers.hooks.taylorseer_cache import TaylorSeerCacheConfig

    return TaylorSeerCacheConfig(
        cache_interval=cache.interval,
        disable_cache_before_step=cache.start,
        disable_cache_after_step=cache.end,
        max_order=1,
        taylor_factors_dtype=dtype,
        cache_identifiers=[name.strip("^$") for name in names],
    )


def _hooks(unet: nn.Module, kind: str) -> list[tuple[nn.Module, object]]:
    """Every diffusers hook of class ``kind`` (by name: TaylorSeer's exists from diffusers 0.36 on) under ``unet``."""
    found = []
    for module in unet.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None:
            found += [(module, hook) for hook in registry.hooks.values() if type(hook).__name__ == kind]
    return found


class LayerCacheLoop:
    """One denoising loop's use of the installed attention caches: fresh state on entry, dropped on exit (also on cancel).

    :meth:`scope` gives each UNet call of a step its own state, by name (a guidance half, a frame window),
    so nothing computed for one is reused for another.
    """

    def __init__(self, unet: nn.Module):
        self._unet = unet
        self._pab = [hook for _, hook in _hooks(unet, PAB_HOOK)]
        self._taylorseer = [hook for _, hook in _hooks(unet, TAYLORSEER_HOOK)]
        if not (self._pab or self._taylorseer):
            raise InputError("this UNet has no attention cache installed; apply its speed settings (apply_speed) first")
        self._pab_states: dict[tuple[int, str], PyramidAttentionBroadcastState] = {}
        self.step = OUTSIDE_LOOP

    def __enter__(self) -> "LayerCacheLoop":
        self._drop()
        for hook in self._pab:
            hook.current_timestep_callback = self._current_step
        return self

    def __exit__(self, *exc_info) -> None:
        self._drop()
        for hook in self._pab:
            hook.current_timestep_callback = _outside_loop

    def _current_step(self) -> int:
        return self.step

    def _drop(self) -> None:
        HookRegistry.check_if_exists_or_initialize(self._unet).reset_stateful_hooks()
        self._pab_states.clear()
        self.step = OUTSIDE_LOOP

    def predict(self, step: int, model_input: torch.Tensor, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``compute()`` at loop step ``step``: the hooks inside the UNet decide what to reuse."""
        self.step = step
        return compute()

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """The UNet calls inside read and write the state kept under ``name``."""
        context = name if CacheContext is None else CacheContext(name)
        for hook in self._taylorseer:
            hook.state_manager.set_context(context)
        for hook in self._pab:
            hook.state = self._pab_states.setdefault((id(hook), name), PyramidAttentionBroadcastState())
        try:
            yield
        finally:
            for hook in self._taylorseer:
                hook.state_manager.set_context(None)


def _outside_loop() -> int:
    return OUTSIDE_LOOP
