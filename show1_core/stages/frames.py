"""A video tensor as 8-bit frames and back, as the original cascade quantises and resizes between stages 3 and 4."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..validation.tensors import check_video


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """``(B, 3, F, H, W)`` in [-1, 1] -> ``(B, F, H, W, 3)`` uint8, truncating as the original does.

    Computed in the video's own precision, as the original quantises its fp16 frames (the
    products are single-rounded, as numpy's, and the cast truncates, as ``astype``).
    """
    check_video(video, "the video to quantise")
    frames = (video * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1)
    return (frames * 255).to(torch.uint8).cpu().numpy()


def resize_uint8_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``(..., H, W, 3)`` uint8 frames with PIL's default filter (the original's ``Image.resize``)."""
    flat = frames.reshape(-1, *frames.shape[-3:])
    resized = np.stack([np.asarray(Image.fromarray(f).resize((width, height))) for f in flat])
    return resized.reshape(*frames.shape[:-3], height, width, 3)


def uint8_frames_to_video(frames: np.ndarray) -> torch.Tensor:
    """``(B, F, H, W, 3)`` uint8 -> ``(B, 3, F, H, W)`` float32 in [-1, 1]."""
    video = torch.from_numpy(frames.astype(np.float32) / 255.0).permute(0, 4, 1, 2, 3)
    return 2.0 * video - 1.0
