"""The checks :class:`~show1_core.cascade.Show1Cascade` makes before its first step, in one call.

Checked only when its stage started, a bad stage-4 size or stage-3 noise level would be found
minutes of accelerator time later. :func:`validate_cascade` checks all of it up front: the
ranges (:mod:`.ranges`), then what each model allows (:mod:`.models`, read from its configs so
nothing is loaded), then a lower bound of each stage's memory (:mod:`.memory`) against the
device's. The stage runs after it skip their own checks.
"""

from __future__ import annotations

from typing import Mapping

import torch

from ..loading.registry import ModelRole
from ..settings import CascadeSettings
from .memory import memory_problems
from .models import ModelLimits, model_problems
from .ranges import raise_problems, settings_problems


def validate_cascade(
    settings: CascadeSettings,
    limits: Mapping[ModelRole, ModelLimits],
    stages: int = 4,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    split_guidance: bool = False,
) -> None:
    """Refuse, with every problem at once, settings the first ``stages`` stages cannot run with.

    ``limits`` holds the models that will run (the IF-II-L first frame only when it is used);
    with ``device``, each stage's memory lower bound is compared with the device's memory
    (guided calls counted as one video with ``split_guidance``).
    Raises :class:`~show1_core.errors.InvalidSettingsError`.
    """
    raise_problems(settings_problems(settings, stages, first_frame_model=ModelRole.FIRST_FRAME in limits))
    problems = model_problems(settings, limits)
    if device is not None and not problems:
        problems = memory_problems(settings, limits, torch.device(device), dtype, split_guidance=split_guidance)
    raise_problems(problems)
