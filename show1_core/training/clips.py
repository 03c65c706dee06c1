"""Training clips for a motion LoRA: reading videos, captions, resizing and frame sampling.

A clip folder holds videos (mp4, webm, mov, mkv, avi, m4v through the ffmpeg binary that
imageio-ffmpeg ships; gif and webp through Pillow), each optionally with a caption in a
``.txt`` file of the same name. Every clip is decoded once, scaled to cover the stage's size,
centre-cropped, and kept as 8-bit frames in memory; training then samples frame windows
from it (see :func:`sample_window`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageSequence

from ..errors import InputError

FFMPEG_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
PILLOW_SUFFIXES = (".gif", ".webp")
VIDEO_SUFFIXES = FFMPEG_SUFFIXES + PILLOW_SUFFIXES


@dataclass
class Clip:
    """One decoded training clip: ``frames`` is ``(F, 3, H, W)`` uint8 at the stage's size."""

    path: Path
    caption: str
    frames: torch.Tensor
    fps: float


def find_clips(folder: Path | str) -> list[Path]:
    """The video files in ``folder`` (not recursive), sorted by name."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"clip folder {folder} does not exist")
    clips = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise InputError(f"{folder} holds no video clips ({', '.join(VIDEO_SUFFIXES)})")
    return clips


def caption_for(path: Path, prompt: str | None) -> str:
    """The clip's caption: its ``.txt`` beside it, else ``prompt``; neither is an error."""
    text_file = path.with_suffix(".txt")
    if text_file.is_file():
        try:
            caption = text_file.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as err:
            raise InputError(f"the caption {text_file.name} is not UTF-8 text (byte {err.start}); save it as UTF-8") from err
        if caption:
            return caption
    if prompt:
        return prompt
    raise InputError(f"{path.name} has no caption: write {text_file.name} beside it, or give one prompt for all clips (--prompt)")


def read_frames(path: Path) -> tuple[np.ndarray, float]:
    """All frames of a video as ``(F, H, W, 3)`` uint8, and its frame rate."""
    try:
        if path.suffix.lower() in PILLOW_SUFFIXES:
            return _read_with_pillow(path)
        return _read_with_ffmpeg(path)
    except (OSError, RuntimeError, ValueError) as err:
        raise InputError(f"cannot read the video {path}: {err}") from err


def _read_with_ffmpeg(path: Path) -> tuple[np.ndarray, float]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = reader.__next__()
    width, height = meta["size"]
    frames = [np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3) for raw in reader]
    if not frames:
        raise ValueError("it has no frames")
    return np.stack(frames), float(meta.get("fps") or 0.0)


def _read_with_pillow(path: Path) -> tuple[np.ndarray, float]:
    with Image.open(path) as image:
        frames, durations = [], []
        for frame in ImageSequence.Iterator(image):
            frames.append(np.asarray(frame.convert("RGB")))
            durations.append(frame.info.get("duration") or 0)
    mean_ms = float(np.mean(durations)) if durations else 0.0
    return np.stack(frames), (1000.0 / mean_ms if mean_ms > 0 else 0.0)


def fit_frames(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Scale ``(F, H, W, 3)`` uint8 frames to cover ``height x width`` and centre-crop: ``(F, 3, height, width)`` uint8."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    source_h, source_w = video.shape[-2:]
    scale = max(height / source_h, width / source_w)
    cover_h, cover_w = max(height, round(source_h * scale)), max(width, round(source_w * scale))
    video = F.interpolate(video, size=(cover_h, cover_w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (cover_h - height) // 2, (cover_w - width) // 2
    video = video[:, :, top : top + height, left : left + width]
    return video.round().clamp(0, 255).to(torch.uint8)


def load_clips(folder: Path | str, prompt: str | None, height: int, width: int) -> list[Clip]:
    """Every clip of ``folder`` with its caption, decoded and fitted to ``height x width``.

    Raises :class:`InputError` for a clip of one frame: a still image has no motion to learn.
    """
    clips = []
    for path in find_clips(folder):
        caption = caption_for(path, prompt)
        frames, fps = read_frames(path)
        if len(frames) < 2:
            raise InputError(f"{path.name} has {len(frames)} frame: a still image has no motion to learn; give clips of at least 2 frames")
        clips.append(Clip(path=path, caption=caption, frames=fit_frames(frames, height, width), fps=fps))
    return clips


def short_clips(clips: list[Clip], count: int) -> str | None:
    """A notice naming the clips with fewer than ``count`` frames (their frames repeat in a sample), or ``None``."""
    short = [f"{clip.path.name} ({clip.frames.shape[0]})" for clip in clips if clip.frames.shape[0] < count]
    if not short:
        return None
    return (
        f"notice: {len(short)} of {len(clips)} clips have fewer than the {count} frames of a sample, so frames repeat "
        f"and the motion they teach is slower: {', '.join(short)}"
    )


def sample_window(clip: Clip, count: int, fps: float | None, generator: torch.Generator) -> torch.Tensor:
    """``count`` frames of ``clip`` as ``(3, count, H, W)`` in [-1, 1].

    With ``fps`` (and a clip frame rate known) the frames are ``1/fps`` seconds apart, starting at
    a random position; a clip too short for that, or with no ``fps``, is sampled evenly from
    its first to its last frame. Clips with fewer frames than ``count`` repeat frames.
    """
    total = clip.frames.shape[0]
    stride = clip.fps / fps if fps and clip.fps > 0 else 0.0
    span = stride * (count - 1)
    if stride and span <= total - 1:
        start = float(torch.rand((), generator=generator)) * (total - 1 - span)
        positions = start + stride * torch.arange(count, dtype=torch.float64)
    else:
        positions = torch.linspace(0, total - 1, count, dtype=torch.float64)
    indices = positions.round().long().clamp(0, total - 1)
    frames = clip.frames[indices].float() / 127.5 - 1.0
    return frames.permute(1, 0, 2, 3)
