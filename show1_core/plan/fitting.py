"""Which run configuration fits an accelerator's memory: the plan of a configuration, and the fewest options that fit.

The options are tried in the order they cost: ``--split-guidance`` (guidance as two passes of
one video: a little slower), ``--memory low-vram`` (models leave the accelerator after their
stage, the VAE works one frame at a time, tiled), ``--stream-blocks`` (UNet blocks stream from
the host: much slower) and ``--fp8`` (weights stored in fp8: the only one that changes the
result). Each alone first, then together in that order.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Callable, TypeVar

import torch

from ..errors import Show1Error
from ..footprint import GIB
from ..memory import POLICY_SETTINGS, MemoryPolicy
from ..settings import CascadeSettings, SpeedSettings
from ..validation.ranges import Problem, raise_problems
from .planner import CascadePlan, PlanModels, plan_run, roles_of_run
from .report import LABELS


@dataclass(frozen=True)
class RunConfig:
    """How a run places and runs its models."""

    policy: MemoryPolicy = MemoryPolicy.BALANCED
    speed: SpeedSettings = SpeedSettings()

    def flags(self) -> list[str]:
        """The ``show1 generate`` flags of this configuration's memory options."""
        speed = self.speed
        flags = [] if self.policy == MemoryPolicy.BALANCED else [f"--memory {self.policy.value}"]
        named = (("--split-guidance", speed.split_guidance), ("--stream-blocks", speed.stream_blocks), ("--fp8", speed.fp8_weights))
        return flags + [flag for flag, on in named if on]


T = TypeVar("T")

LEANER: tuple[tuple[str, Callable[[RunConfig], RunConfig]], ...] = (
    ("--split-guidance", lambda c: replace(c, speed=replace(c.speed, split_guidance=True))),
    ("--memory low-vram", lambda c: replace(c, policy=MemoryPolicy.LOW_VRAM)),
    ("--stream-blocks", lambda c: replace(c, speed=replace(c.speed, stream_blocks=True))),
    ("--fp8", lambda c: replace(c, speed=replace(c.speed, fp8_weights=True))),
)
"""Each memory option and what it changes, cheapest first."""


def _candidates(config: RunConfig) -> list[RunConfig]:
    """``config`` with each option it lacks alone, then with them added one after another."""
    lacking = [apply for flag, apply in LEANER if flag not in config.flags()]
    alone = [apply(config) for apply in lacking]
    together, current = [], config
    for apply in lacking:
        current = apply(current)
        together.append(current)
    return [c for i, c in enumerate(alone + together[1:]) if c not in (alone + together[1:])[:i]]


ModelBuilder = Callable[[SpeedSettings], PlanModels]
"""Builds a plan's models on ``meta`` for given speed settings (fp8 storage changes them)."""


def released_models(stages: int, dtype: torch.dtype, first_frame_model: bool) -> ModelBuilder:
    """The released models of a run of the first ``stages`` stages."""
    return lambda speed: PlanModels.released(roles_of_run(stages, first_frame_model), dtype, speed)


def plan_config(
    build: ModelBuilder, settings: CascadeSettings, stages: int, config: RunConfig, first_frame_model: bool, count_flops: bool = True
) -> CascadePlan:
    """The plan of a run with ``config``."""
    return plan_run(build(config.speed), settings, stages, POLICY_SETTINGS[config.policy], first_frame_model, count_flops)


def fewest_options_that_fit(
    build: ModelBuilder, settings: CascadeSettings, stages: int, config: RunConfig, memory: int, first_frame_model: bool
) -> tuple[RunConfig, CascadePlan] | None:
    """The first configuration, in :data:`LEANER`'s order, whose planned peak is within ``memory`` bytes (``None``: none)."""
    for candidate in _candidates(config):
        plan = plan_config(build, settings, stages, candidate, first_frame_model, count_flops=False)
        if plan.peak_accelerator <= memory:
            return candidate, plan
    return None


def advisory(make: Callable[[], T]) -> T | None:
    """``make()``, or ``None`` with a warning when planning fails for a reason other than the user's input: a plan is
    advice, so a model the meta device cannot run (a custom layer without a shape-only kernel) must not stop the run."""
    try:
        return make()
    except Show1Error:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of the shape-only run; the real run still checks everything
        warnings.warn(f"show1 could not plan this run's memory ({type(err).__name__}: {err}); it runs without that check", stacklevel=3)
        return None


def refuse_unless_it_fits(
    build: ModelBuilder, settings: CascadeSettings, stages: int, config: RunConfig, memory: int, first_frame_model: bool, device: str
) -> None:
    """Raise :class:`InvalidSettingsError` when the run's planned peak exceeds ``memory`` bytes, naming the largest part
    and the fewest memory options that would fit (or that nothing does)."""
    plan = advisory(lambda: plan_config(build, settings, stages, config, first_frame_model, count_flops=False))
    if plan is None or plan.peak_accelerator <= memory:
        return
    largest = max(plan.parts, key=lambda part: part.accelerator)
    message = (
        f"the run needs {plan.peak_accelerator / GIB:.1f} GiB with {' '.join(config.flags()) or 'balanced'} (planned: "
        f"{LABELS[largest.name]}), more than the {memory / GIB:.1f} GiB of the {device} device; "
    )
    found = advisory(lambda: fewest_options_that_fit(build, settings, stages, config, memory, first_frame_model))
    if found is None:
        message += "no memory option is enough: use a smaller size or fewer frames"
    else:
        fitting, fitted = found
        message += f"it fits with {' '.join(fitting.flags())} ({fitted.peak_accelerator / GIB:.1f} GiB; `show1 plan` shows every part)"
    raise_problems([Problem(None, message)])
