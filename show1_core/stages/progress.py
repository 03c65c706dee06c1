"""Progress reporting and cancellation between denoising steps.

Every event counts the steps of a whole stage, so a progress bar rises once from 0 to its
total even when the stage runs several denoising loops (stage-3 windows and its IF-II-L
first frame, chunks of interpolation windows). A stage announces itself with a step-0
event before its first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import GenerationCancelled


@dataclass(frozen=True)
class StepEvent:
    """``step`` of ``total`` denoising steps of ``stage`` are done (0: the stage is starting)."""

    stage: str
    step: int
    total: int
    sample: torch.Tensor
    """The current sample ``(batch, channels, frames, height, width)``: pixels in [-1, 1]
    for stages 1-3, latents for stage 4."""
    denoised: torch.Tensor | None = None
    """The scheduler's current estimate of the clean result (same shape), where it gives one:
    what a preview should show. ``None`` on the step-0 event."""


@dataclass(frozen=True)
class StageSteps:
    """Where one denoising loop's steps are counted: its stage, the stage's steps before it, and the stage's total."""

    stage: str
    before: int
    total: int


StepCallback = Callable[[StepEvent], "bool | None"]
"""Called before the first step and after every step. Return ``False`` (or raise) to cancel the run."""


def report(callback: StepCallback | None, event: StepEvent) -> None:
    """Deliver an event; turn a ``False`` answer into :class:`GenerationCancelled`."""
    if callback is not None and callback(event) is False:
        raise GenerationCancelled(f"{event.stage} cancelled after step {event.step} of {event.total}")
