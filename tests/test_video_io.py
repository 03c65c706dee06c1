"""Video files and contact sheets."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from show1_core.errors import InputError
from show1_core.stages.frames import to_uint8_frames
from show1_core.video_io import video_frames, write_contact_sheet, write_video


def _video(frames=5, height=20, width=30) -> torch.Tensor:
    return torch.linspace(-1, 1, 3 * frames * height * width).reshape(1, 3, frames, height, width)


def test_frames_are_quantised_like_the_original():
    frames = video_frames(torch.tensor([-1.0, 0.0, 0.999, 2.0]).reshape(1, 1, 1, 1, 4).repeat(1, 3, 1, 1, 1))
    assert frames.dtype == np.uint8
    assert frames[0, 0, :, 0].tolist() == [0, 127, 254, 255]  # truncation, as tensor2vid does


def test_mp4_has_every_frame_and_pads_odd_sizes(tmp_path):
    path = write_video(_video(height=21, width=31), tmp_path / "v.mp4", fps=8)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["size"] == (32, 22)
    assert sum(1 for _ in reader) == 5


@pytest.mark.parametrize("suffix", ["gif", "webp"])
def test_animations(tmp_path, suffix):
    path = write_video(_video(), tmp_path / f"v.{suffix}", fps=4)
    with Image.open(path) as image:
        assert image.n_frames == 5 and image.size == (30, 20)
        image.seek(1)
        image.load()
        assert image.info["duration"] == 250


def test_contact_sheet_layout(tmp_path):
    path = write_contact_sheet(_video(frames=10), tmp_path / "sheet.png", columns=4)
    with Image.open(path) as sheet:
        assert sheet.size == (4 * 30, 3 * 20)


def test_bad_requests(tmp_path):
    with pytest.raises(InputError, match="unsupported video format"):
        write_video(_video(), tmp_path / "v.avi", fps=8)
    with pytest.raises(InputError, match="fps"):
        write_video(_video(), tmp_path / "v.mp4", fps=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_quantising_reduced_precision_frames(dtype):
    """fp16 frames quantise exactly as numpy does in the original; bf16 frames quantise too."""
    video = (torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(3)) * 3 - 1.5).to(dtype)
    ours = to_uint8_frames(video)[0]
    if dtype == torch.float16:
        original = ((video * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1).numpy() * 255).astype(np.uint8)[0]
        assert np.array_equal(ours, original)
    assert ours.dtype == np.uint8 and ours.max() == 255 and ours.min() == 0


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), 1e-9, -1.0, True, "8"])
def test_a_frame_rate_that_is_not_a_usable_number_is_refused(tmp_path, fps):
    with pytest.raises(InputError, match=r"fps must be a number from 0\.01 to 3840"):
        write_video(_video(), tmp_path / "v.mp4", fps=fps)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "video, found",
    [
        (_video() * 127.5 + 127.5, "from 0 to 255"),
        (torch.zeros(1, 3, 5, 20, 30, dtype=torch.uint8), "uint8"),
        (torch.full((1, 3, 5, 20, 30), float("nan")), "NaN"),
    ],
    ids=["0..255 floats", "uint8", "nan"],
)
def test_frames_outside_minus_one_to_one_or_of_the_wrong_dtype_are_refused(tmp_path, video, found):
    for write in (lambda: write_video(video, tmp_path / "v.mp4", fps=8), lambda: write_contact_sheet(video, tmp_path / "s.png")):
        with pytest.raises(InputError, match=found):
            write()
    assert list(tmp_path.iterdir()) == []
