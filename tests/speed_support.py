"""Compiled keyframes with a count of compiled graphs, shared by tests/test_speed.py and the pinned-kernel worker."""

from __future__ import annotations

from pathlib import Path

import torch
from torch._dynamo.utils import counters

from show1_core.loading import ModelRole
from show1_core.parity import ParityCase
from show1_core.settings import KeyframeSettings, SpeedSettings
from show1_core.stages import generate_keyframes


def compiled_keyframes(case_dir: Path, models: Path, dtype: torch.dtype, graphs_per_step: list[int]) -> torch.Tensor:
    """The parity case's keyframes from a compiled model (aot_eager), noting the compiled-graph count after every step.

    aot_eager stands in for inductor (which needs minutes per model on a CPU): the same regions, traced the same way.
    """
    case = ParityCase(case_dir, models, dtype, SpeedSettings(compile=True, compile_backend="aot_eager"))
    p = case.params
    settings = KeyframeSettings(
        num_frames=p["frames"], height=p["height"], width=p["width"], steps=p["steps"], guidance=case.guidance("keyframes")
    )

    def count(event) -> None:
        if event.step:
            graphs_per_step.append(counters["stats"]["unique_graphs"])

    return generate_keyframes(case.model(ModelRole.KEYFRAMES), case.t5(), settings, seed=case.seed, callback=count)
