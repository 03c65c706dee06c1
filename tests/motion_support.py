"""Clips of moving squares and a measure of their motion, for the motion LoRA experiment.

Shared by ``tests/make_motion_base.py`` (which fits the base model in
``tests/fixtures/motion/square-base`` on squares moving left or right) and
``tests/test_motion_training.py`` (which teaches it one direction with a motion LoRA).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

BASE = Path(__file__).resolve().parent / "fixtures" / "motion" / "square-base"
"""The fitted keyframe checkpoint folder (``unet/``, ``scheduler/``) and its prompt embeddings."""
PROMPT_FILE = "prompt.safetensors"
HEIGHT, WIDTH, FRAMES = 8, 16, 8
SIDE = 2.0
"""Side of the square in pixels."""
SQUARES = 3
"""Squares per clip."""
SPEED = 1.25
"""How fast the square moves, pixels per frame (8.75 px over the 8 frames)."""
FADE = (0.2, 0.5)
"""Brightness of the square (white = 1) in the first and the last frame; it brightens linearly in between."""


def _coverage(start: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, size)``: how much of each pixel ``[i, i+1)`` the intervals ``[start, start + SIDE)`` cover."""
    pixels = torch.arange(size, dtype=torch.float32)
    start = start.float().unsqueeze(-1)
    return (torch.minimum(start + SIDE, pixels + 1) - torch.maximum(start, pixels)).clamp(0, 1)


def square_video(x0: float, y0: float, vx: float) -> torch.Tensor:
    """``(FRAMES, 3, HEIGHT, WIDTH)`` uint8: an antialiased grey square on black, its corner at ``(x0 + vx*f, y0)``.

    It brightens from frame to frame over :data:`FADE`.
    """
    steps = torch.arange(FRAMES, dtype=torch.float32)
    columns, rows = _coverage(x0 + vx * steps, WIDTH), _coverage(torch.full((FRAMES,), y0), HEIGHT)
    brightness = FADE[0] + (FADE[1] - FADE[0]) * steps / (FRAMES - 1)
    frames = rows.unsqueeze(-1) * columns.unsqueeze(-2) * brightness[:, None, None]  # (F, H, W)
    return (frames * 255).round().to(torch.uint8).unsqueeze(1).expand(-1, 3, -1, -1).clone()


def _start(speed: float, size: int, generator: torch.Generator) -> float:
    """A start coordinate from which a square moving at ``speed`` stays inside ``size`` pixels."""
    travel = speed * (FRAMES - 1)
    low, high = max(0.0, -travel), min(size - SIDE, size - SIDE - travel)
    return low + float(torch.rand((), generator=generator)) * (high - low)


def random_clip(generator: torch.Generator, velocity: float | None = None) -> torch.Tensor:
    """:data:`SQUARES` squares at random places, as :func:`square_video` (overlaps keep the brighter pixel).

    Each moves at ``velocity``, or, when it is ``None``, left or right at :data:`SPEED`, the two
    equally often and independently of the other squares.
    """
    squares = []
    for _ in range(SQUARES):
        vx = SPEED * (2 * int(torch.randint(0, 2, (), generator=generator)) - 1) if velocity is None else velocity
        squares.append(square_video(_start(vx, WIDTH, generator), _start(0.0, HEIGHT, generator), vx))
    return torch.stack(squares).amax(0)


def as_model_input(videos: torch.Tensor) -> torch.Tensor:
    """``(B, F, 3, H, W)`` uint8 videos as the UNet sees them: ``(B, 3, F, H, W)`` in [-1, 1]."""
    return videos.permute(0, 2, 1, 3, 4).float() / 127.5 - 1.0


def load_prompt() -> tuple[torch.Tensor, torch.Tensor]:
    """The base model's prompt embedding and the empty prompt's, ``(1, tokens, width)`` each."""
    tensors = load_file(BASE / PROMPT_FILE)
    return tensors["positive"], tensors["negative"]


def centroid_slopes(videos: torch.Tensor) -> torch.Tensor:
    """Per ``(B, 3, F, H, W)`` video in [-1, 1], the least-squares slope (pixels per frame) of its bright content's horizontal centroid.

    Each pixel weighs the square of how much brighter it is than its frame's median (the
    background, which the sampler's thresholding may leave grey rather than black).
    """
    brightness = (videos.float().mean(1) + 1) / 2  # (B, F, H, W)
    background = brightness.flatten(2).median(-1).values[..., None, None]
    weight = (brightness - background).clamp(min=0) ** 2
    columns = torch.arange(videos.shape[-1], dtype=torch.float32)
    centroid = (weight.sum(2) * columns).sum(-1) / weight.sum((2, 3)).clamp(min=1e-6)  # (B, F)
    frames = torch.arange(videos.shape[2], dtype=torch.float32)
    frames = frames - frames.mean()
    return (centroid * frames).sum(-1) / (frames**2).sum()
