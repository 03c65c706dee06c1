"""Progress reporting and cancellation between denoising steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import GenerationCancelled


@dataclass(frozen=True)
class StepEvent:
    """One finished denoising step.

    ``part``/``parts`` count the independent loops of a stage (stage-3 windows, the
    IF-II-L first frame), so ``(part * total + step) / (parts * total)`` is the stage's
    overall progress.
    """

    stage: str
    step: int
    total: int
    part: int
    parts: int
    sample: torch.Tensor
    """The current sample ``(batch, channels, frames, height, width)``: pixels in [-1, 1]
    for stages 1-3, latents for stage 4."""

    @property
    def fraction(self) -> float:
        """Overall progress of the stage in [0, 1]."""
        return (self.part * self.total + self.step) / max(1, self.parts * self.total)


StepCallback = Callable[[StepEvent], "bool | None"]
"""Called after every step. Return ``False`` (or raise) to cancel the run."""


def report(callback: StepCallback | None, event: StepEvent) -> None:
    """Deliver an event; turn a ``False`` answer into :class:`GenerationCancelled`."""
    if callback is not None and callback(event) is False:
        raise GenerationCancelled(f"{event.stage} cancelled after step {event.step} of {event.total}")
