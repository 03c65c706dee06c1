"""Getting a stage's models onto the accelerator for a run, with or without ComfyUI.

Inside ComfyUI a stage's modules are handed to ComfyUI's model management as one
``ModelPatcher``: ``load_models_gpu`` makes room (offloading other models as it sees fit)
and loads them; they stay resident until ComfyUI needs the memory, or, under the
``low-vram`` policy, this stage's model alone is unloaded after the run. Outside ComfyUI
show1_core's :class:`~show1_core.ModelPlacer` does the same job. Either way the stage runs
through show1_core's one stage runner (:class:`~show1_core.host.PlacedModel`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from torch import nn

from show1_core import MemoryPolicy, StageModel
from show1_core.host import ModelPlacer, PlacedModel, PlacerPlacement, advisory, planned_activation_bytes

from .comfy_bridge import ComfyRuntime, comfy_runtime, torch_device


class StageModules(nn.Module):
    """The modules of one stage under one parent, as ComfyUI's ``ModelPatcher`` expects.

    Diffusers models expose ``device`` as a read-only property, which ``ModelPatcher``
    assigns to; this plain container takes that attribute instead. Each stage gets a
    subclass named after it (:func:`modules_of`), which is the name ComfyUI's log shows.
    """

    def __init__(self, modules: list[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(modules)


def modules_of(model: StageModel) -> StageModules:
    """The stage's modules in a container named for ComfyUI's log, e.g. ``Show1KeyframesModel``."""
    name = "Show1" + "".join(word.title() for word in model.stage.value.split("_")) + "Model"
    return type(name, (StageModules,), {"__doc__": f"The {model.stage.title} model of Show-1."})(model.modules())


class ComfyPlacement:
    """Stage models managed by ComfyUI: loaded with ``load_models_gpu``, offloaded when ComfyUI needs room."""

    def __init__(self, runtime: ComfyRuntime, model: StageModel, policy: MemoryPolicy):
        mm = runtime.model_management
        self._mm = mm
        self.device = mm.get_torch_device()
        self.policy = policy
        self.patcher = runtime.model_patcher.ModelPatcher(
            modules_of(model), load_device=self.device, offload_device=mm.unet_offload_device()
        )
        self.memory_required = 0
        """Accelerator bytes the next run needs beyond the weights, for ``load_models_gpu`` to free first."""

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Load the stage fully; under ``low-vram``, unload this stage's model (only it) afterwards."""
        self._mm.load_models_gpu([self.patcher], memory_required=self.memory_required, force_full_load=True)
        try:
            yield
        finally:
            if self.policy == MemoryPolicy.LOW_VRAM:
                self._unload()

    def _unload(self) -> None:
        """What ``free_memory`` does for one model: ``model_unload`` its entry and drop it from the loaded list."""
        loaded = self._mm.current_loaded_models
        for index, entry in enumerate(loaded):
            if entry.model is self.patcher:
                if entry.model_unload():
                    loaded.pop(index)
                break
        self._mm.soft_empty_cache()


def _comfy_placement(stage: PlacedModel) -> ComfyPlacement | None:
    placement = stage.placement
    while not isinstance(placement, ComfyPlacement) and hasattr(placement, "inner"):
        placement = placement.inner  # a Motion LoRA node's placement wraps the loader's
    return placement if isinstance(placement, ComfyPlacement) else None


def request_planned_memory(stages: Sequence[PlacedModel | None], run: Callable[..., object]) -> None:
    """Before ``run(*stages)`` (with settings shortened by ``two_steps``): on a ComfyUI accelerator, plan on ``meta`` what
    each model's part of the run holds beyond the weights, and ask ComfyUI to free that much when it loads the model
    (``load_models_gpu(memory_required=...)``). ``None`` stands for a model the node was not given."""
    given = [stage for stage in stages if stage is not None]
    placements = [_comfy_placement(stage) for stage in given]
    if not placements or any(p is None or p.device.type == "cpu" for p in placements):
        return
    planned = advisory(lambda: planned_activation_bytes(given, run)) or [0] * len(given)
    for placement, needed in zip(placements, planned):
        placement.memory_required = needed


def placed_stage(model: StageModel, policy: MemoryPolicy) -> PlacedModel:
    """A loaded stage under ComfyUI's model management inside ComfyUI, else under show1_core's placer."""
    runtime = comfy_runtime()
    if runtime is not None:
        return PlacedModel(model, ComfyPlacement(runtime, model, policy), policy)
    return PlacedModel(model, PlacerPlacement(ModelPlacer(torch_device(), policy), model), policy)
