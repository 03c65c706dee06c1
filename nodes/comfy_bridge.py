"""ComfyUI's runtime APIs where ComfyUI is present, and plain stand-ins where it is not.

The pack must import (and its nodes must run) without ComfyUI, so every ComfyUI module
is looked up when it is needed, never at import time. Inside ComfyUI:

* progress goes through one ``comfy.utils.ProgressBar`` per node, updated after every
  denoising step with a preview from ComfyUI's ``latent_preview`` (see :mod:`.previews`);
  ComfyUI's progress hook checks the Cancel button on every update, so a cancelled run
  stops at the next step;
* stage models are wrapped in ``comfy.model_patcher.ModelPatcher`` and loaded with
  ``comfy.model_management.load_models_gpu``, so ComfyUI can offload them between stages;
* results go to ``comfy.model_management.intermediate_device()``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

import torch

from show1_core import ModelRole, StepCallback, StepEvent
from show1_core.host import default_device

from .previews import stage_previewer, step_preview


@dataclass(frozen=True)
class ComfyRuntime:
    """The ComfyUI modules the pack uses."""

    model_management: ModuleType
    utils: ModuleType
    model_patcher: ModuleType


def comfy_runtime() -> ComfyRuntime | None:
    """ComfyUI's runtime modules, or ``None`` when the pack runs outside ComfyUI."""
    try:
        return ComfyRuntime(
            model_management=importlib.import_module("comfy.model_management"),
            utils=importlib.import_module("comfy.utils"),
            model_patcher=importlib.import_module("comfy.model_patcher"),
        )
    except ImportError:
        return None


def torch_device() -> torch.device:
    """The device stages run on: ComfyUI's choice, else CUDA, MPS or the CPU."""
    runtime = comfy_runtime()
    return runtime.model_management.get_torch_device() if runtime else default_device()


def to_intermediate(tensor: torch.Tensor) -> torch.Tensor:
    """Move a result to where ComfyUI keeps node outputs between nodes (the CPU, float32, by default)."""
    runtime = comfy_runtime()
    if runtime is None:
        return tensor.to("cpu", torch.float32)
    mm = runtime.model_management
    dtype = mm.intermediate_dtype() if hasattr(mm, "intermediate_dtype") else torch.float32
    return tensor.to(mm.intermediate_device(), dtype)


class ComfyProgress:
    """Feeds a node's step events to one ``comfy.utils.ProgressBar``, with ComfyUI's preview of each step."""

    def __init__(self, utils: ModuleType, previewer: object | None):
        self._utils = utils
        self._previewer = previewer
        self._bar = None

    def __call__(self, event: StepEvent) -> None:
        if self._bar is None:
            self._bar = self._utils.ProgressBar(event.total)
        self._bar.update_absolute(event.step, event.total, step_preview(self._previewer, event))


def progress_callback(stage: ModelRole) -> StepCallback | None:
    """A step callback that reports ``stage``'s progress to ComfyUI (and so can be cancelled there); ``None`` outside ComfyUI."""
    runtime = comfy_runtime()
    if runtime is None:
        return None
    return ComfyProgress(runtime.utils, stage_previewer(stage, runtime.model_management.get_torch_device()))
