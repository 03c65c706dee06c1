"""Which run configuration fits an accelerator's memory: the plan of a configuration, and the fewest options that fit.

The options are tried in the order they cost: ``--split-guidance`` (guidance as two passes of
one video: a little slower), ``--memory low-vram`` (models leave the accelerator after their
stage, the VAE works one frame at a time, tiled), ``--stream-blocks`` (UNet blocks stream from
the host: much slower) and ``--fp8`` (weights stored in fp8: the only one that changes the
result). Each alone first, then together in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..memory import MemoryPolicy
from ..settings import CascadeSettings, SpeedSettings
from .planner import CascadePlan, plan_cascade


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


def plan_config(
    settings: CascadeSettings, stages: int, dtype: torch.dtype, config: RunConfig, first_frame_model: bool, count_flops: bool = True
) -> CascadePlan:
    """The plan of a run with ``config``."""
    return plan_cascade(settings, stages, dtype, config.policy, config.speed, first_frame_model, count_flops=count_flops)


def fewest_options_that_fit(
    settings: CascadeSettings, stages: int, dtype: torch.dtype, config: RunConfig, memory: int, first_frame_model: bool
) -> tuple[RunConfig, CascadePlan] | None:
    """The first configuration, in :data:`LEANER`'s order, whose planned peak is within ``memory`` bytes (``None``: none)."""
    for candidate in _candidates(config):
        plan = plan_config(settings, stages, dtype, candidate, first_frame_model, count_flops=False)
        if plan.peak_accelerator <= memory:
            return candidate, plan
    return None
