"""The accelerator memory one stage run will need beyond its weights, planned on ``meta`` just before it runs.

A host with its own model management (ComfyUI's ``load_models_gpu(memory_required=...)``) can
ask for this much room before it loads a stage's models. The plan runs the very runner call the
host is about to make, on a ``meta`` twin of the loaded model (built from its configs, with the
same speed settings), with two denoising steps per window: every step has the same shapes.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

from ..loading.stage_model import StageModel
from ..runner import PlacedModel
from .live_bytes import LiveBytes
from .meta_models import META, meta_stage_from_configs
from .planner import PlanPlacement, with_loops

S = TypeVar("S")


def meta_twin(model: StageModel) -> StageModel:
    """``model`` rebuilt on ``meta`` from its configs, in its compute precision and with its speed settings."""
    dtype = next(p.dtype for p in model.unet.parameters() if p.dtype.is_floating_point and p.element_size() > 1)
    # copies: a scheduler keeps the device of the samples it last noised, which must stay the real model's
    schedulers = {"scheduler": model.fresh_scheduler()}
    if model.noising_scheduler is not None:
        schedulers["image_noising_scheduler"] = type(model.noising_scheduler).from_config(model.noising_scheduler.config)
    vae = None if model.vae is None else dict(model.vae.config)
    return meta_stage_from_configs(model.stage, dict(model.unet.config), schedulers, vae, dtype, model.speed)


def two_steps(settings: S) -> S:
    """A stage's settings with two denoising steps per window (for stage 4, enough steps that ``strength`` keeps two)."""
    return with_loops(settings, 2)


def planned_activation_bytes(placed: Sequence[PlacedModel], run: Callable[..., object]) -> list[int]:
    """Per placed model, the peak accelerator bytes beyond the weights while it holds the accelerator in
    ``run(*twins)``, planned on ``meta`` twins of the models (give ``run`` settings shortened by :func:`two_steps`)."""
    tracker = LiveBytes()
    twins = [meta_twin(p.model) for p in placed]
    with tracker:
        tracker.track_weights(*(module for twin in twins for module in (twin.unet, twin.vae)))
        weights = tracker.current[META.type]
        run(
            *[
                PlacedModel(twin, PlanPlacement(tracker, str(i), META), p.policy, p.policy_settings)
                for i, (twin, p) in enumerate(zip(twins, placed))
            ]
        )
    return [tracker.section_peak[str(i)][META.type] - weights for i in range(len(placed))]
