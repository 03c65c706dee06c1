"""Memory policy: which models sit on the accelerator, and when they leave it.

``low-vram``     a stage's models leave the accelerator as soon as the stage ends, and
                 finished stages are freed from RAM too; the T5 encoder streams block by
                 block (diffusers' group offloading, one layer at a time); the VAE works one
                 frame at a time with tiling.
``balanced``     (default) one large model on the accelerator at a time: a stage's models
                 stay there after it until another model needs the device; the T5 encoder
                 streams block by block.
``all-resident`` every model stays on the accelerator once loaded (fastest, most memory).

The same meaning holds inside ComfyUI, where its model management does the moving (see the
node pack's placement).

``balanced`` is designed to keep the full default cascade (29 frames at 576x320, paper
settings) well under the paper's 15 GB peak; docs/PERFORMANCE.md has the per-stage budget
and the benchmark that measures it on a GPU.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterator, TypeVar

import torch
from torch import nn

from .errors import InputError, OutOfMemoryError
from .footprint import downscale_factor

T = TypeVar("T")


class MemoryPolicy(str, Enum):
    """How aggressively models leave the accelerator."""

    LOW_VRAM = "low-vram"
    BALANCED = "balanced"
    ALL_RESIDENT = "all-resident"


@dataclass(frozen=True)
class PolicySettings:
    """What a policy means in practice."""

    one_model_at_a_time: bool
    """Other models leave the accelerator before a stage's models move there."""
    release_after_stage: bool
    """A stage's models leave the accelerator as soon as it ends."""
    free_after_stage: bool
    """The cascade drops a finished stage's models from RAM too."""
    stream_text_encoder: bool
    vae_frames_per_batch: int
    vae_tiling: bool


POLICY_SETTINGS = {
    MemoryPolicy.LOW_VRAM: PolicySettings(True, True, True, True, 1, True),
    MemoryPolicy.BALANCED: PolicySettings(True, False, False, True, 8, False),
    MemoryPolicy.ALL_RESIDENT: PolicySettings(False, False, False, False, 32, False),
}


def default_device() -> torch.device:
    """The machine's accelerator (CUDA, Apple MPS, ...; diffusers' ``get_device``), else the CPU."""
    from diffusers.utils.torch_utils import get_device  # here, so that building the CLI's parser stays fast

    return torch.device(get_device())


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The device to run on (``None``: the best available), refusing unknown or unavailable ones clearly."""
    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"unknown device {name!r}; use cuda, cuda:N, mps or cpu") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} was requested but CUDA is not available to this PyTorch; use cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' was requested but Apple MPS is not available; use cpu")
    return device


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on accelerators (as the original runs), fp32 on the CPU."""
    return torch.float32 if device.type == "cpu" else torch.float16


def empty_cache(device: torch.device) -> None:
    """Return freed blocks to the device (no-op on the CPU, where a full garbage collection would free nothing but cost time)."""
    if device.type == "cpu":
        return
    from diffusers.utils.torch_utils import empty_device_cache

    gc.collect()
    if hasattr(torch, device.type):  # devices without a backend module (``meta``) keep no cache
        empty_device_cache(device.type)


class ModelPlacer:
    """Moves models between the accelerator and the CPU according to a policy."""

    def __init__(
        self, device: torch.device | str, policy: MemoryPolicy | str = MemoryPolicy.BALANCED, settings: PolicySettings | None = None
    ):
        """``settings`` replaces what the policy means (e.g. to reproduce another program's strategy in a benchmark)."""
        self.device = torch.device(device)
        self.policy = MemoryPolicy(policy)
        self.settings = settings or POLICY_SETTINGS[self.policy]
        self._resident: list[nn.Module] = []

    def _evict(self, keep: list[nn.Module]) -> None:
        for module in list(self._resident):
            if not any(module is k for k in keep):
                module.to("cpu")
                self._resident.remove(module)
        empty_cache(self.device)

    @contextmanager
    def on_device(self, *modules: nn.Module) -> Iterator[None]:
        """Run a block with ``modules`` on the accelerator, other models leaving first as the policy says.

        With ``low-vram`` the modules go back to the CPU on exit, also after an error or a
        cancel; with the other policies they stay until another stage needs the room.
        """
        modules_list = [m for m in modules if m is not None]
        if self.settings.one_model_at_a_time:
            self._evict(modules_list)
        for module in modules_list:
            module.to(self.device)
            if not any(module is r for r in self._resident):
                self._resident.append(module)
        try:
            yield
        finally:
            if self.settings.release_after_stage:
                self._evict([])

    def streams_large_encoders(self) -> bool:
        """Whether :meth:`streamed` runs encoders block by block (accelerators only, and not all-resident)."""
        return self.settings.stream_text_encoder and self.device.type != "cpu"

    @contextmanager
    def streamed(self, module: nn.Module) -> Iterator[nn.Module]:
        """Run a large encoder block by block on the accelerator (or whole, if the policy allows)."""
        if not self.streams_large_encoders():
            with self.on_device(module):
                yield module
            return
        from .speed.streaming import streamed_layers  # here, so that importing the placer does not load diffusers

        self._evict([])
        try:
            with streamed_layers(module, self.device):
                yield module
        finally:
            empty_cache(self.device)

    def release(self, module: nn.Module | None) -> None:
        """Forget a model after its stage (its memory is freed once nothing else holds it)."""
        if module is None:
            return
        self._resident = [m for m in self._resident if m is not module]
        module.to("cpu")
        empty_cache(self.device)


@contextmanager
def tiled_vae(vae: nn.Module, enabled: bool, tile: int = 256) -> Iterator[None]:
    """Decode and encode in overlapping ``tile``-pixel tiles (less memory, faint seams), then restore the VAE."""
    if not enabled:
        yield
        return
    saved = (vae.use_tiling, vae.tile_sample_min_size, vae.tile_latent_min_size)
    scale = downscale_factor(vae.config)
    vae.use_tiling, vae.tile_sample_min_size, vae.tile_latent_min_size = True, tile, tile // scale
    try:
        yield
    finally:
        vae.use_tiling, vae.tile_sample_min_size, vae.tile_latent_min_size = saved


def peak_memory_bytes(device: torch.device) -> int | None:
    """Peak allocated accelerator memory since the last reset (``None`` on the CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return None


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory measurement."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


OOM_ADVICE = "Use fp16 or bf16, the low-vram memory policy, or a smaller size or frame count."


def retry_smaller_on_oom(run: Callable[[int], T], chunk: int, device: torch.device | str, what: str) -> T:
    """Call ``run(chunk)``, halving ``chunk`` after each out-of-memory error until it is 1.

    Only for work whose result does not depend on the chunk size beyond float rounding
    (interpolation windows, VAE frames).
    """
    device = torch.device(device)
    while True:
        try:
            return run(chunk)
        except torch.OutOfMemoryError as err:
            if chunk <= 1:
                raise OutOfMemoryError(f"{what} ran out of accelerator memory even one at a time. {OOM_ADVICE}") from err
        # outside the except block, so the failed attempt's tensors (held by the traceback) are gone
        empty_cache(device)
        chunk = max(1, chunk // 2)


@contextmanager
def explain_out_of_memory(what: str) -> Iterator[None]:
    """Turn an accelerator out-of-memory error inside the block into an actionable :class:`OutOfMemoryError`."""
    try:
        yield
    except torch.OutOfMemoryError as err:
        raise OutOfMemoryError(f"{what} ran out of accelerator memory. {OOM_ADVICE}") from err
