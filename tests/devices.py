"""A stand-in accelerator for placement tests on a CPU-only machine.

The ``meta`` device plays the accelerator: moving there is observable (``param.device``),
costs nothing, and a model placed on it cannot silently compute. Plain modules cannot come
back from ``meta`` (it holds no data), so :class:`RoundTrip` remembers its values when it
leaves for ``meta`` and restores them when moved back to the CPU, however it is moved
(``.to`` on it or on a parent module).
"""

from __future__ import annotations

import torch
from torch import nn

ACCELERATOR = torch.device("meta")


class RoundTrip(nn.Linear):
    """A linear layer that survives a CPU -> meta -> CPU round trip with its values."""

    def __init__(self) -> None:
        super().__init__(2, 2)
        self._kept: dict[str, torch.Tensor] | None = None

    def _apply(self, fn, recurse: bool = True):
        target = fn(torch.empty(0)).device
        if target.type == "meta" and not self.weight.is_meta:
            self._kept = {k: v.clone() for k, v in self.state_dict().items()}
            return super()._apply(fn, recurse)
        if target.type == "cpu" and self.weight.is_meta:
            super()._apply(lambda t: torch.empty_like(t, device="cpu"), recurse)
            self.load_state_dict(self._kept)
            return self
        return super()._apply(fn, recurse)


def where(module: nn.Module) -> str:
    """The device type a module's parameters are on."""
    return next(module.parameters()).device.type
