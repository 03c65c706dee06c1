"""Writing stage videos: mp4 (H.264 via the ffmpeg binary that imageio-ffmpeg ships), gif, webp,
and a PNG contact sheet of the frames."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import InputError
from .stages.latent_sr import to_uint8_frames

FORMATS = ("mp4", "gif", "webp")


def video_frames(video: torch.Tensor) -> np.ndarray:
    """``(1, 3, F, H, W)`` in [-1, 1] -> ``(F, H, W, 3)`` uint8 (videos of a batch are placed side by side)."""
    frames = to_uint8_frames(video.float())  # (B, F, H, W, 3)
    return np.concatenate(list(frames), axis=2)


def _write_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    import imageio_ffmpeg

    height, width = frames.shape[1:3]
    pad_h, pad_w = height % 2, width % 2  # H.264 with yuv420p needs even sizes
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (frames.shape[2], frames.shape[1]),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=8,
        macro_block_size=1,
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame).tobytes())
    writer.close()


def _write_animation(frames: np.ndarray, path: Path, fps: float) -> None:
    images = [Image.fromarray(f) for f in frames]
    extra = {"lossless": True} if path.suffix.lower() == ".webp" else {}
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, **extra)


def write_video(video: torch.Tensor, path: Path | str, fps: float) -> Path:
    """Write a ``(B, 3, F, H, W)`` video in [-1, 1] as mp4, gif or webp (chosen by the file suffix)."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise InputError(f"unsupported video format {path.suffix!r}; use one of {', '.join('.' + f for f in FORMATS)}")
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = video_frames(video)
    (_write_mp4 if kind == "mp4" else _write_animation)(frames, path, fps)
    return path


def write_contact_sheet(video: torch.Tensor, path: Path | str, columns: int = 8) -> Path:
    """Write every frame of a video into one PNG grid, left to right, top to bottom."""
    path = Path(path)
    frames = video_frames(video)
    count, height, width = frames.shape[:3]
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    sheet = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[r * height : (r + 1) * height, c * width : (c + 1) * width] = frame
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return path
