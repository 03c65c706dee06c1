"""Getting a stage's models onto the accelerator for a run, with or without ComfyUI.

Inside ComfyUI a stage's modules are handed to ComfyUI's model management as one
``ModelPatcher``: ``load_models_gpu`` makes room (offloading the models of other stages
or other packs) and loads them; they stay resident until ComfyUI needs the memory.
Outside ComfyUI show1_core's :class:`~show1_core.memory.ModelPlacer` does the same job
for the memory policy chosen on the loader.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import Iterator, Protocol

import torch
from torch import nn

from show1_core.memory import MemoryPolicy, ModelPlacer

from .comfy_bridge import ComfyRuntime, comfy_runtime, torch_device


class Placement(Protocol):
    """Where a stage runs, and how its models get there."""

    device: torch.device

    def running(self) -> AbstractContextManager[None]:
        """Hold the stage's models on :attr:`device` for the duration of a ``with`` block."""


class StageModules(nn.Module):
    """The modules of one stage under one parent, as ComfyUI's ``ModelPatcher`` expects.

    Diffusers models expose ``device`` as a read-only property, which ``ModelPatcher``
    assigns to; this plain container takes that attribute instead.
    """

    def __init__(self, modules: list[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(modules)


class ComfyPlacement:
    """Stage models managed by ComfyUI: loaded with ``load_models_gpu``, offloaded when ComfyUI needs room."""

    def __init__(self, runtime: ComfyRuntime, modules: list[nn.Module], policy: MemoryPolicy):
        mm = runtime.model_management
        self._mm = mm
        self.device = mm.get_torch_device()
        self.policy = policy
        self.patcher = runtime.model_patcher.ModelPatcher(
            StageModules(modules), load_device=self.device, offload_device=mm.unet_offload_device()
        )

    @contextmanager
    def running(self) -> Iterator[None]:
        """Load the stage fully; with the low-vram policy, unload every model again afterwards."""
        self._mm.load_models_gpu([self.patcher], force_full_load=True)
        try:
            yield
        finally:
            if self.policy == MemoryPolicy.LOW_VRAM:
                self._mm.unload_all_models()
                self._mm.soft_empty_cache()


class LocalPlacement:
    """Stage models moved by show1_core's memory policy (the pack running without ComfyUI)."""

    def __init__(self, modules: list[nn.Module], policy: MemoryPolicy):
        self.device = torch_device()
        self._modules = modules
        self._placer = ModelPlacer(self.device, policy)

    def running(self) -> AbstractContextManager[None]:
        """Move the modules to the device for the block (and back afterwards, unless all-resident)."""
        return self._placer.on_device(*self._modules)


def make_placement(modules: list[nn.Module], policy: MemoryPolicy) -> Placement:
    """ComfyUI's model management when the pack runs inside ComfyUI, else show1_core's placer."""
    runtime = comfy_runtime()
    return ComfyPlacement(runtime, modules, policy) if runtime else LocalPlacement(modules, policy)
