"""Running a placed stage with motion LoRAs, leaving the loaded model unchanged between runs."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import torch

from ..loading.stage_model import StageModel
from ..runner import PlacedModel, Placement
from .adapters import motion_loras
from .files import MotionLora


@dataclass(frozen=True)
class MotionLoraPlacement:
    """A stage's placement that also applies motion LoRAs, once the model is on its device, for the run only."""

    inner: Placement
    model: StageModel
    loras: tuple[MotionLora, ...]

    @property
    def device(self) -> torch.device:
        """The device of the wrapped placement."""
        return self.inner.device

    @contextmanager
    def holding(self) -> Iterator[None]:
        """The wrapped placement's block, with the LoRAs on the model (removed afterwards, also after an error)."""
        with self.inner.holding(), motion_loras(self.model, self.loras):
            yield


def with_motion_loras(stage: PlacedModel, loras: Sequence[MotionLora]) -> PlacedModel:
    """The same loaded stage, run with ``loras`` added to any it already carries (the model itself is not changed)."""
    if not loras:
        return stage
    placement = stage.placement
    if isinstance(placement, MotionLoraPlacement):
        placement = MotionLoraPlacement(placement.inner, stage.model, placement.loras + tuple(loras))
    else:
        placement = MotionLoraPlacement(placement, stage.model, tuple(loras))
    return replace(stage, placement=placement)
