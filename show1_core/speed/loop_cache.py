"""The step cache of one denoising loop, whichever method the stage model's settings name."""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Callable, Iterator, Protocol

import torch
from torch import nn

from ..settings import CacheSettings
from .layer_cache import LayerCacheLoop
from .step_skip import StepSkip


class DenoiseCache(Protocol):
    """What the denoising loop asks of a step cache."""

    def predict(self, step: int, model_input: torch.Tensor, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The guided UNet prediction for ``model_input`` at loop step ``step``, computed with ``compute()`` or reused."""

    def scope(self, name: str) -> AbstractContextManager[None]:
        """The block in which one UNet call of the step runs (``name``: its guidance half and frame window)."""


class NoCache:
    """``off``: every step computed, nothing kept."""

    def predict(self, step: int, model_input: torch.Tensor, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``compute()``."""
        return compute()

    def scope(self, name: str) -> AbstractContextManager[None]:
        """Nothing to do."""
        return nullcontext()


@contextmanager
def denoise_cache(unet: nn.Module, cache: CacheSettings) -> Iterator[DenoiseCache]:
    """A fresh cache for one denoising loop (one window, one prompt batch, one stage); its state is dropped when
    the loop ends, also when it is cancelled or fails."""
    if cache.method == "off":
        yield NoCache()
    elif cache.method == "step":
        skip = StepSkip(cache)
        try:
            yield skip
        finally:
            skip.drop()
    else:
        with LayerCacheLoop(unet) as loop:
            yield loop
