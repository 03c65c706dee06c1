"""The show-1-sr2 VAE as a core ComfyUI ``VAE``, so core VAE nodes work on Show-1 latents and back.

ComfyUI's ``comfy.sd.VAE`` loads the diffusers-format weights itself, but an image VAE
decodes 4-D latents ``[frames, 4, h, w]``. Show-1's video latents are 5-D
``[batch, 4, frames, h, w]`` and raw (unscaled), as ComfyUI keeps ``LATENT`` samples. The
subclass here folds 5-D latents into frames for decoding (core *VAE Decode* then joins the
frames into one IMAGE batch) and returns what it encodes as one 5-D video latent, so core
*VAE Encode* output feeds Show-1 Latent Refine directly. Show-1's latent nodes also take
4-D frame latents from any SD-family VAE as one video.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

import torch

from show1_core import StageModel


def fold_frames(latents: torch.Tensor) -> torch.Tensor:
    """``[B, C, T, h, w]`` -> ``[B*T, C, h, w]`` (4-D latents pass unchanged)."""
    if latents.ndim != 5:
        return latents
    batch, channels, frames, height, width = latents.shape
    return latents.movedim(2, 1).reshape(batch * frames, channels, height, width)


def as_video_latent(frames: torch.Tensor) -> torch.Tensor:
    """``[T, C, h, w]`` frame latents -> one video ``[1, C, T, h, w]`` (5-D latents pass unchanged)."""
    return frames.movedim(0, 1).unsqueeze(0) if frames.ndim == 4 else frames


@lru_cache(maxsize=None)
def video_vae_class(base: type) -> type:
    """A subclass of ComfyUI's ``VAE`` class ``base`` that decodes and encodes video latents."""

    class Show1VideoVAE(base):
        """The show-1-sr2 VAE for core VAE nodes: 5-D video latents in and out."""

        def decode(self, samples_in, *args, **kwargs):
            images = super().decode(fold_frames(samples_in), *args, **kwargs)
            return images.reshape(samples_in.shape[0], -1, *images.shape[1:]) if samples_in.ndim == 5 else images

        def decode_tiled(self, samples, *args, **kwargs):
            images = super().decode_tiled(fold_frames(samples), *args, **kwargs)
            return images.reshape(samples.shape[0], -1, *images.shape[1:]) if samples.ndim == 5 else images

        def encode(self, pixel_samples):
            return as_video_latent(super().encode(pixel_samples))

        def encode_tiled(self, pixel_samples, *args, **kwargs):
            return as_video_latent(super().encode_tiled(pixel_samples, *args, **kwargs))

    return Show1VideoVAE


SD_VAE_LAYOUT = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
}
"""The architecture ComfyUI's ``comfy.sd.VAE`` builds for a diffusers-format SD VAE (its fixed ``ddconfig``)."""


class UnusableCoreVAE:
    """Stands in for a core ``VAE`` when the stage's VAE is not the SD layout ComfyUI can build; any use explains why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __getattr__(self, name: str):
        raise RuntimeError(self.reason)


def layout_mismatch(vae: torch.nn.Module) -> str | None:
    """What differs between ``vae``'s config and the SD layout core ComfyUI builds, or ``None``."""
    config = dict(vae.config)
    differences = [
        f"{key} {tuple(config.get(key)) if isinstance(config.get(key), list) else config.get(key)} (core expects {expected})"
        for key, expected in SD_VAE_LAYOUT.items()
        if (tuple(config.get(key)) if isinstance(config.get(key), list) else config.get(key)) != expected
    ]
    return ", ".join(differences) or None


def core_vae(model: StageModel) -> object | None:
    """The stage model's VAE as a core ComfyUI ``VAE`` (``None`` outside ComfyUI).

    Core ComfyUI can only build the SD VAE layout (the released show-1-sr2 VAE is one); for any
    other layout (the tiny test models) the output is a stand-in that explains this when used.
    """
    try:
        sd = importlib.import_module("comfy.sd")
    except ImportError:
        return None
    mismatch = layout_mismatch(model.vae)
    if mismatch:
        return UnusableCoreVAE(
            f"This show-1-sr2 VAE is not the Stable Diffusion VAE layout that core VAE nodes can build ({mismatch}); "
            "decode and encode its latents with Show-1 VAE Decode / Show-1 VAE Encode instead."
        )
    state = {name: tensor.detach().to("cpu") for name, tensor in model.vae.state_dict().items()}
    return video_vae_class(sd.VAE)(sd=state)
