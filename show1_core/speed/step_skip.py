"""show1's whole-step skip: the UNet's last prediction reused while its input barely changes.

The idea of TeaCache and EasyCache (ComfyUI's ``comfy_extras/nodes_easycache.py``), written for
show1's loop: diffusers has no whole-step skip, and its step caches that come closest
(``FirstBlockCache``, ``MagCache``) need a transformer's ``transformer_blocks``, which a UNet has not.
After two computed steps the cache knows how fast the prediction changes relative to its input
(the *rate*); at every later step it adds ``rate x`` the input's relative change to an estimate of
how far the prediction has moved since it was last computed, and reuses that prediction while the
estimate stays under the threshold. A computed step starts the estimate again from 0.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Callable

import torch

from ..settings import CacheSettings


def relative_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over mean absolute value of ``old``, one number per batch entry."""
    difference = (new - old).abs().flatten(1).mean(1)
    return difference / old.abs().flatten(1).mean(1)


class StepSkip:
    """One denoising loop's whole-step cache: create one per loop, so it belongs to one window and one prompt.

    Decisions are for the whole guided batch (both guidance halves, every video and window in it):
    a step is skipped only when every entry's estimate is under the threshold, so the halves
    always run together, with or without split guidance, and each keeps its own prediction.
    """

    def __init__(self, settings: CacheSettings):
        self.threshold = settings.threshold
        self.start = settings.start
        self.end = settings.end
        self.drop()

    def drop(self) -> None:
        """Forget everything kept (the loop ended, or was cancelled)."""
        self._last_input: torch.Tensor | None = None
        self._computed_input: torch.Tensor | None = None
        self._computed_output: torch.Tensor | None = None
        self._rate: torch.Tensor | None = None
        self._estimate: torch.Tensor | None = None

    def predict(self, step: int, model_input: torch.Tensor, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The UNet's prediction for ``model_input`` at loop step ``step``: ``compute()``, or the last one reused."""
        skip = self._may_skip(step, model_input)
        self._last_input = model_input
        if skip:
            return self._computed_output
        output = compute()
        if self._computed_output is not None:
            self._rate = relative_change(output, self._computed_output) / relative_change(model_input, self._computed_input)
        self._computed_input, self._computed_output = model_input, output
        self._estimate = torch.zeros_like(self._rate) if self._rate is not None else None
        return output

    def _may_skip(self, step: int, model_input: torch.Tensor) -> bool:
        if self._rate is None or model_input.is_meta or step < self.start or (self.end is not None and step >= self.end):
            return False
        estimate = self._estimate + self._rate * relative_change(model_input, self._last_input)
        if bool((estimate < self.threshold).all()):
            self._estimate = estimate
            return True
        return False

    def scope(self, name: str) -> AbstractContextManager[None]:
        """Nothing to separate inside a step: the whole guided prediction is reused or computed together."""
        return nullcontext()
