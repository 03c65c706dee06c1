"""Output files: every write is verified and atomic, nothing is overwritten by surprise, and bad
locations are refused before any stage runs (issue 12, defects 1-3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from show1_core import video_io
from show1_core.cli import main
from show1_core.errors import GenerationCancelled, OutputError
from show1_core.video_io import write_contact_sheet, write_frames, write_video

QUICK = ["--stages", "1", "--keyframes-steps", "1", "--device", "cpu", "--offline"]


def _video(frames: int = 5) -> torch.Tensor:
    return torch.linspace(-1, 1, 3 * frames * 20 * 30).reshape(1, 3, frames, 20, 30)


def _show1(*args: str, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """The ``show1`` command as a user runs it: a new process, its exit code and output."""
    return subprocess.run([sys.executable, "-m", "show1_core", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _frames(path: Path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- defect 1: a failed write is an error, and what is written is read back ----------------


def test_an_output_name_starting_with_a_dash_is_written_not_taken_for_an_option(tiny_root, tmp_path):
    done = _show1("generate", "a cat", "--models-dir", str(tiny_root), *QUICK, "--output=-dash.mp4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote -dash.mp4" in done.stdout
    assert _frames(tmp_path / "-dash.mp4") == 8
    assert _leftovers(tmp_path) == ["-dash.mp4", "-dash_sheet.png"]


def test_an_unwritable_output_folder_fails_before_any_stage_runs(tiny_root, tmp_path):
    done = _show1("generate", "a cat", "--models-dir", str(tiny_root), *QUICK, "-o", "/proc/show1-test.mp4", cwd=tmp_path)
    assert done.returncode == 2
    assert "cannot write into /proc" in done.stderr and "Traceback" not in done.stderr
    assert "keyframes" not in done.stderr, "refused before the first stage's progress bar"


def test_writing_into_an_unwritable_folder_raises():
    with pytest.raises(OutputError, match="cannot write /proc/show1-test.mp4"):
        write_video(_video(), "/proc/show1-test.mp4", fps=8)


@pytest.mark.parametrize("suffix", ["mp4", "gif"])
def test_an_encoder_that_writes_nothing_is_an_error(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(video_io, "_write_mp4" if suffix == "mp4" else "_write_animation", lambda frames, path, fps: None)
    with pytest.raises(OutputError, match="produced no data"):
        write_video(_video(), tmp_path / f"v.{suffix}", fps=8)
    assert _leftovers(tmp_path) == []


def test_a_video_missing_frames_is_an_error(tmp_path, monkeypatch):
    real = video_io._write_mp4
    monkeypatch.setattr(video_io, "_write_mp4", lambda frames, path, fps: real(frames[:3], path, fps))
    with pytest.raises(OutputError, match="3 of 5 frames"):
        write_video(_video(), tmp_path / "v.mp4", fps=8)
    assert _leftovers(tmp_path) == []


def test_an_unreadable_result_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(video_io, "_write_animation", lambda frames, path, fps: path.write_bytes(b"GIF89a but not really"))
    with pytest.raises(OutputError, match="cannot be read back"):
        write_video(_video(), tmp_path / "v.gif", fps=8)
    assert _leftovers(tmp_path) == []


# --- defect 2: interrupted writes leave nothing half-written ---------------------------------


class _InterruptedFrames:
    """A frame source that is interrupted after ``good`` frames, as Ctrl-C or Cancel would."""

    def __init__(self, error: BaseException, count: int = 6, good: int = 3):
        self.error, self.count, self.good = error, count, good
        self.frames = np.zeros((count, 20, 30, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):
        if isinstance(index, int) and index >= self.good:
            raise self.error
        return self.frames[index]


@pytest.mark.parametrize("suffix", ["mp4", "gif", "webp"])
@pytest.mark.parametrize("error", [KeyboardInterrupt(), GenerationCancelled("cancelled")], ids=["ctrl-c", "cancel"])
def test_an_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path, suffix, error):
    kept = tmp_path / f"kept.{suffix}"
    kept.write_bytes(b"the previous video")
    with pytest.raises(type(error)):
        write_frames(_InterruptedFrames(error), kept, fps=8)
    with pytest.raises(type(error)):
        write_frames(_InterruptedFrames(error), tmp_path / f"new.{suffix}", fps=8)
    assert _leftovers(tmp_path) == [kept.name]
    assert kept.read_bytes() == b"the previous video"


def test_ctrl_c_while_the_cli_writes_leaves_no_partial_file(tiny_root, tmp_path):
    """A real SIGINT, sent to the ``show1`` process when ffmpeg has received its first frame."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import imageio_ffmpeg
        from show1_core.cli import main

        real = imageio_ffmpeg.write_frames

        class Interrupting:
            def __init__(self, writer):
                self.writer = writer

            def send(self, data):
                self.writer.send(data)
                if data is not None:
                    os.kill(os.getpid(), signal.SIGINT)

            def close(self):
                self.writer.close()

        def interrupted(*args, **kwargs):
            return Interrupting(real(*args, **kwargs))

        imageio_ffmpeg.write_frames = interrupted
        sys.exit(main(["generate", "a cat", "--models-dir", {str(tiny_root)!r}, *{QUICK!r}, "-o", "demo.mp4"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 130, done.stderr
    assert "cancelled" in done.stderr
    assert _leftovers(tmp_path) == []


# --- defect 3: existing outputs and bad locations are refused before running ----------------


def test_existing_outputs_are_refused_unless_overwrite_is_given(tiny_root, tmp_path):
    for name in ("keep.mp4", "keep_sheet.png"):
        (tmp_path / name).write_bytes(b"precious")
    done = _show1("generate", "a cat", "--models-dir", str(tiny_root), *QUICK, "-o", "keep.mp4", cwd=tmp_path)
    assert done.returncode == 2
    assert "keep.mp4" in done.stderr and "keep_sheet.png" in done.stderr and "--overwrite" in done.stderr
    assert all((tmp_path / name).read_bytes() == b"precious" for name in ("keep.mp4", "keep_sheet.png"))
    assert main(["generate", "a cat", "--models-dir", str(tiny_root), *QUICK, "-o", str(tmp_path / "keep.mp4"), "--overwrite"]) == 0
    assert _frames(tmp_path / "keep.mp4") == 8


def test_the_demo_refuses_to_overwrite_its_earlier_files(tmp_path, capsys):
    (tmp_path / "demo_sheet.png").write_bytes(b"precious")
    assert main(["demo", "-o", str(tmp_path)]) == 2
    assert "demo_sheet.png" in capsys.readouterr().err
    assert _leftovers(tmp_path) == ["demo_sheet.png"]


@pytest.mark.parametrize(
    "output, message",
    [
        ("{tmp}/afile/out.mp4", "is a file, not a folder"),
        ("", "is not a file name"),
        ("{tmp}/", "is not a file name"),
        ("{tmp}", "is not a file name"),
        ("{tmp}/taken.mp4", "refusing to overwrite"),
        ("{tmp}/clip.mp4", "clip_sheet.png is a folder"),
    ],
)
def test_bad_output_locations_are_refused_before_any_model_loads(tmp_path, capsys, output, message):
    """The (empty) models folder would otherwise be the error."""
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "taken.mp4").write_text("a file")
    (tmp_path / "clip_sheet.png").mkdir()
    assert main(["generate", "a cat", "--models-dir", str(tmp_path / "none"), "--offline", "-o", output.format(tmp=tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_intermediate_videos_are_checked_too(tmp_path, capsys):
    (tmp_path / "out_keyframes.mp4").write_text("a file")
    argv = ["generate", "a cat", "--models-dir", str(tmp_path / "none"), "--offline", "-o", str(tmp_path / "out.mp4")]
    assert main(argv + ["--stages", "2", "--save-intermediate"]) == 2
    assert "out_keyframes.mp4" in capsys.readouterr().err


def test_contact_sheet_is_written_atomically(tmp_path, monkeypatch):
    from PIL import Image

    def broken_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG truncated")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OutputError, match="cannot be read back"):
        write_contact_sheet(_video(), tmp_path / "sheet.png")
    assert _leftovers(tmp_path) == []
