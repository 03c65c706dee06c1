"""ComfyUI core nodes for the test executor: the interfaces of ``workflow_source/core_nodes.py`` with simple implementations.

They do what ComfyUI's documented behaviour says, simply: video files are read and written
with the ffmpeg binary that imageio-ffmpeg ships (ComfyUI uses PyAV), ``ImageScale``
resizes with torch after ComfyUI's centre crop. They need the fake ``folder_paths``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

CORE_NODES_FILE = Path(__file__).resolve().parent.parent / "workflow_source" / "core_nodes.py"
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".gif")


def _interfaces():
    name = "show1_core_node_interfaces"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CORE_NODES_FILE)
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


core = _interfaces()


def _folder_paths():
    return importlib.import_module("folder_paths")


@dataclass
class VideoComponents:
    """``comfy_api``'s ``VideoComponents``: frames, frame rate, audio."""

    images: torch.Tensor
    frame_rate: Fraction
    audio: object = None


class Video:
    """A VIDEO value (core's ``VideoInput``): frames ``[T, H, W, 3]`` in 0..1, a frame rate and optional audio."""

    def __init__(self, images: torch.Tensor, frame_rate: Fraction, audio=None):
        self.images, self.frame_rate, self.audio = images, frame_rate, audio

    def get_components(self) -> VideoComponents:
        """As ``VideoInput.get_components``."""
        return VideoComponents(self.images, self.frame_rate, self.audio)

    def get_dimensions(self) -> tuple[int, int]:
        """(width, height)."""
        return self.images.shape[2], self.images.shape[1]


def write_video(path: Path, images: torch.Tensor, fps: float) -> None:
    """Encode ``[T, H, W, 3]`` frames in 0..1 as H.264 mp4."""
    frames = (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    writer = imageio_ffmpeg.write_frames(
        str(path), (frames.shape[2], frames.shape[1]), fps=fps, codec="libx264", pix_fmt_out="yuv444p", macro_block_size=1
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame).tobytes())
    writer.close()


def read_video(path: Path) -> Video:
    """Decode a video file into frames in 0..1 and its frame rate."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(chunk, np.uint8).reshape(height, width, 3) for chunk in reader]
    images = torch.from_numpy(np.stack(frames)).float() / 255.0
    return Video(images, Fraction(meta["fps"]).limit_denominator(1000))


class LoadVideo(core.LoadVideo):
    """Reads a video from the input folder."""

    FUNCTION = "load"

    @classmethod
    def video_files(cls) -> list[str]:
        """Videos in ComfyUI's input folder."""
        folder = _folder_paths().get_input_directory()
        return [f for f in os.listdir(folder) if f.lower().endswith(VIDEO_SUFFIXES)]

    @classmethod
    def VALIDATE_INPUTS(cls, file):
        """As ComfyUI's: the file must exist."""
        return True if _folder_paths().exists_annotated_filepath(file) else f"Invalid video file: {file}"

    def load(self, file):
        return (read_video(Path(_folder_paths().get_annotated_filepath(file))),)


class GetVideoComponents(core.GetVideoComponents):
    """Frames, audio and fps of a VIDEO."""

    FUNCTION = "split"

    def split(self, video):
        parts = video.get_components()
        return (parts.images, parts.audio, float(parts.frame_rate))


class CreateVideo(core.CreateVideo):
    """A VIDEO from frames and fps."""

    FUNCTION = "create"

    def create(self, images, fps, audio=None):
        return (Video(images, Fraction(fps), audio),)


class SaveVideo(core.SaveVideo):
    """Writes the VIDEO to the output folder and reports it in the node's UI output."""

    FUNCTION = "save"

    def save(self, video, filename_prefix, format, codec, prompt=None, extra_pnginfo=None):
        width, height = video.get_dimensions()
        folder, filename, counter, subfolder, _ = _folder_paths().get_save_image_path(
            filename_prefix, _folder_paths().get_output_directory(), width, height
        )
        file = f"{filename}_{counter:05}_.mp4"
        parts = video.get_components()
        write_video(Path(folder) / file, parts.images, float(parts.frame_rate))
        return {"ui": {"images": [{"filename": file, "subfolder": subfolder, "type": "output"}], "animated": (True,)}, "result": ()}


def _center_crop(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """ComfyUI's ``common_upscale`` centre crop: trim the longer side to the target aspect ratio."""
    old_height, old_width = samples.shape[-2:]
    old_aspect, new_aspect = old_width / old_height, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_width - old_width * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_height - old_height * (old_aspect / new_aspect)) / 2)
    return samples[..., y : old_height - y, x : old_width - x]


class ImageScale(core.ImageScale):
    """Resizes an image batch (0 for one side keeps the aspect ratio)."""

    FUNCTION = "upscale"

    def upscale(self, image, upscale_method, width, height, crop):
        samples = image.movedim(-1, 1)
        if width == 0 and height == 0:
            return (image,)
        width = width or max(1, round(samples.shape[3] * height / samples.shape[2]))
        height = height or max(1, round(samples.shape[2] * width / samples.shape[3]))
        if crop == "center":
            samples = _center_crop(samples, width, height)
        if upscale_method == "lanczos":
            pictures = [Image.fromarray((s.movedim(0, -1).numpy() * 255).round().astype(np.uint8)) for s in samples]
            resized = [torch.from_numpy(np.asarray(p.resize((width, height), Image.LANCZOS))).float() / 255 for p in pictures]
            return (torch.stack(resized),)
        mode = {"nearest-exact": "nearest-exact", "bilinear": "bilinear", "area": "area", "bicubic": "bicubic"}[upscale_method]
        return (F.interpolate(samples, size=(height, width), mode=mode).movedim(1, -1).clamp(0, 1),)


CORE_NODE_CLASSES = {cls.__name__: cls for cls in (LoadVideo, GetVideoComponents, CreateVideo, SaveVideo, ImageScale)}
