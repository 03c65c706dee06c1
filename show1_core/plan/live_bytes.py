"""Live tensor memory per device, counted as the tensors come and go: the current bytes and the peak.

A :class:`LiveBytes` block sees every tensor an operation returns (a PyTorch dispatch mode)
and counts its storage once, until the storage is freed. It works on real tensors and on the
``meta`` device alike, where tensors have shapes and dtypes but no data: a run on ``meta``
allocates nothing, yet its counts are the bytes the same run would hold on a real device.
Tensors made before the block (weights, inputs) are not counted unless given to :meth:`track`.
"""

from __future__ import annotations

import weakref
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ALL = "all"
"""The key of the bytes on every device together."""


class LiveBytes(TorchDispatchMode):
    """Within the block, the bytes of live tensor storages per device type (``"meta"``, ``"cpu"``, ``"cuda"``) and
    on all of them together (:data:`ALL`)."""

    def __init__(self) -> None:
        super().__init__()
        self.current: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self._live: dict[int, weakref.ref] = {}
        self.section_peak: dict[str, Counter[str]] = {}
        self._open: list[str] = []

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Also record the peak per device within this block as ``section_peak[name]`` (the highest, if entered again)."""
        peaks = self.section_peak.setdefault(name, Counter())
        for device, size in self.current.items():
            peaks[device] = max(peaks[device], size)
        self._open.append(name)
        try:
            yield
        finally:
            self._open.remove(name)

    def track(self, tensor: torch.Tensor) -> None:
        """Count ``tensor``'s storage from now until it is freed (once, however many tensors view it)."""
        storage = tensor.untyped_storage()
        key = id(storage)
        known = self._live.get(key)
        if known is not None and known() is storage:
            return
        device, size = tensor.device.type, storage.nbytes()
        self._live[key] = weakref.ref(storage)
        for counted in (device, ALL):
            self.current[counted] += size
            self.peak[counted] = max(self.peak[counted], self.current[counted])
            for name in self._open:
                peaks = self.section_peak[name]
                peaks[counted] = max(peaks[counted], self.current[counted])
        weakref.finalize(storage, self._freed, key, device, size)

    def track_weights(self, *modules: nn.Module | None) -> None:
        """Count every parameter and buffer of ``modules`` (``None`` skipped) from now on."""
        for module in modules:
            for tensor in () if module is None else (*module.parameters(), *module.buffers()):
                self.track(tensor)

    def _freed(self, key: int, device: str, size: int) -> None:
        self.current[device] -= size
        self.current[ALL] -= size
        self._live.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(result):
            if isinstance(leaf, torch.Tensor):
                self.track(leaf)
        return result
