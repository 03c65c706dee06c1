"""Writing stage videos: mp4 (H.264 via the ffmpeg binary that imageio-ffmpeg ships), gif, webp,
and a PNG contact sheet of the frames.

Every file is written under a temporary name, read back (frame count, size) and only then renamed
into place (:func:`show1_core.outputs.atomic_write`): a failed or interrupted write raises and
leaves nothing behind.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .encoder import Mp4Encoder
from .errors import InputError, OutputError
from .outputs import atomic_write
from .stages.frames import to_uint8_frames
from .validation.ranges import MAX_FPS, MAX_FRAMES_BETWEEN, number, raise_problems
from .validation.tensors import check_video

FORMATS = ("mp4", "gif", "webp")
MIN_FPS = 0.01
"""Lowest frame rate a file is written at: one frame per 100 s."""
MAX_FILE_FPS = MAX_FPS * (MAX_FRAMES_BETWEEN + 1)
"""Highest frame rate a file is written at: the fastest keyframes, interpolated the most."""


def video_frames(video: torch.Tensor) -> np.ndarray:
    """``(1, 3, F, H, W)`` in [-1, 1] -> ``(F, H, W, 3)`` uint8 (videos of a batch are placed side by side)."""
    frames = to_uint8_frames(video.float())  # (B, F, H, W, 3)
    return np.concatenate(list(frames), axis=2)


def _write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float) -> None:
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))  # H.264 with yuv420p needs even sizes
    encoder = Mp4Encoder(path, (width + width % 2, height + height % 2), fps)
    try:
        for frame in frames:
            encoder.send(np.ascontiguousarray(np.pad(frame, pad, mode="edge")).tobytes())
        encoder.finish()
    except BaseException:
        encoder.abort()  # stops ffmpeg, also when a frame fails or the write is interrupted
        raise


def _write_animation(frames: Sequence[np.ndarray], path: Path, fps: float) -> None:
    images = [Image.fromarray(f) for f in frames]
    extra = {"lossless": True} if path.suffix.lower() == ".webp" else {}
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, **extra)


def _frames_in(path: Path) -> int:
    if path.suffix.lower() == ".mp4":
        import imageio_ffmpeg

        return imageio_ffmpeg.count_frames_and_secs(str(path))[0]
    with Image.open(path) as image:
        return getattr(image, "n_frames", 1)


def check_written(path: Path, frames: int, destination: Path) -> None:
    """Raise :class:`OutputError` unless ``path`` is a non-empty file that reads back with ``frames`` frames."""
    if not path.is_file() or path.stat().st_size == 0:
        raise OutputError(f"writing {destination} produced no data (the encoder failed); nothing was written")
    try:
        found = _frames_in(path)
    except Exception as err:  # any reader failure means the file is unusable
        reason = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        raise OutputError(f"{destination} was written but cannot be read back ({reason}); nothing was written") from err
    if found != frames:
        raise OutputError(f"{destination} was written with {found} of {frames} frames; nothing was written")


def write_frames(frames: Sequence[np.ndarray], path: Path | str, fps: float, overwrite: bool = True) -> Path:
    """Write ``(H, W, 3)`` uint8 frames as mp4, gif or webp (chosen by the suffix), atomically and verified.

    Without ``overwrite``, an existing ``path`` (even one that appears during the write) is kept and
    :class:`OutputError` raised.
    """
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise InputError(f"unsupported video format {path.suffix!r}; use one of {', '.join('.' + f for f in FORMATS)}")
    raise_problems(number("fps", fps, MIN_FPS, MAX_FILE_FPS))
    if len(frames) == 0:
        raise InputError(f"no frames to write to {path}")
    with atomic_write(path, overwrite) as temporary:
        (_write_mp4 if kind == "mp4" else _write_animation)(frames, temporary, fps)
        check_written(temporary, len(frames), path)
    return path


def write_video(video: torch.Tensor, path: Path | str, fps: float, overwrite: bool = True) -> Path:
    """Write a ``(B, 3, F, H, W)`` floating-point video in [-1, 1] as mp4, gif or webp (chosen by the file suffix).

    Raises :class:`InputError` for other dtypes and values outside [-1, 1] (beyond a stage's overshoot:
    0..255 frames), naming the range found.
    """
    check_video(video, "the video to write", pixels=True)
    return write_frames(video_frames(video), path, fps, overwrite)


def write_contact_sheet(video: torch.Tensor, path: Path | str, columns: int = 8, overwrite: bool = True) -> Path:
    """Write every frame of a ``(B, 3, F, H, W)`` video in [-1, 1] into one PNG grid, left to right, top to bottom."""
    check_video(video, "the video to write", pixels=True)
    path = Path(path)
    frames = video_frames(video)
    count, height, width = frames.shape[:3]
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    sheet = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[r * height : (r + 1) * height, c * width : (c + 1) * width] = frame
    with atomic_write(path, overwrite) as temporary:
        Image.fromarray(sheet).save(temporary, format="PNG")
        check_written(temporary, 1, path)
    return path
