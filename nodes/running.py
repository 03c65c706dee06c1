"""Running a show1_core stage function from a node: models placed, progress reported, Cancel honoured."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, TypeVar

import torch

from show1_core.errors import InputError
from show1_core.memory import POLICY_SETTINGS, explain_out_of_memory, tiled_vae
from show1_core.stages import StepCallback

from .comfy_bridge import progress_callback
from .types import StageHandle

T = TypeVar("T")


def run_stage(handle: StageHandle, run: Callable[[StepCallback | None], T]) -> T:
    """Call ``run(callback)`` with the stage's models on their device.

    Inside ComfyUI the callback drives a ``ProgressBar`` with previews; ComfyUI's progress
    hook raises its interrupt exception on the next step after Cancel, which propagates
    out of the denoising loop. The models leave the device afterwards as the placement
    decides, also after an error.
    """
    callback = progress_callback()
    with explain_out_of_memory(f"the {handle.model.stage.title}"), torch.inference_mode(), handle.placement.running():
        return run(callback)


def vae_frames_per_batch(handle: StageHandle) -> int:
    """How many frames the VAE takes at once under the handle's memory policy (halved on out-of-memory)."""
    return POLICY_SETTINGS[handle.policy].vae_frames_per_batch


def vae_memory_mode(handle: StageHandle) -> AbstractContextManager[None]:
    """Tiled VAE encoding and decoding under the low-vram policy (as the cascade does), untiled otherwise."""
    if handle.model.vae is None:
        raise InputError("the expert latent super-resolution model was loaded without its VAE (show-1-sr2/vae)")
    return tiled_vae(handle.model.vae, POLICY_SETTINGS[handle.policy].vae_tiling)
