"""Output files: every write is verified and atomic, nothing is overwritten by surprise, and bad
locations are refused before any stage runs."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
import time
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


# --- a failed write is an error, and what is written is read back ----------------


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


# --- interrupted writes leave nothing half-written ---------------------------------


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
        from show1_core.encoder import Mp4Encoder
        from show1_core.cli import main

        real = Mp4Encoder.send

        def interrupting(self, frame):
            real(self, frame)
            os.kill(os.getpid(), signal.SIGINT)

        Mp4Encoder.send = interrupting
        sys.exit(main(["generate", "a cat", "--models-dir", {str(tiny_root)!r}, *{QUICK!r}, "-o", "demo.mp4"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 130, done.stderr
    assert "cancelled" in done.stderr
    assert _leftovers(tmp_path) == []


# --- existing outputs and bad locations are refused before running ----------------


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


# --- concurrent runs, killed runs, a full disk ---------------------------------------------------


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_until_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _running(pid)


def test_a_file_that_appears_during_the_write_is_kept_without_overwrite(tmp_path, monkeypatch):
    destination = tmp_path / "same.mp4"
    real = video_io.check_written

    def another_run_finishes_first(path, frames, dest):
        real(path, frames, dest)
        dest.write_bytes(b"the other run's video")

    monkeypatch.setattr(video_io, "check_written", another_run_finishes_first)
    with pytest.raises(OutputError, match="appeared while this run was writing"):
        write_video(_video(), destination, fps=8, overwrite=False)
    assert destination.read_bytes() == b"the other run's video"
    assert _leftovers(tmp_path) == ["same.mp4"]


def test_two_concurrent_runs_to_one_output_exactly_one_succeeds(tiny_root, tmp_path):
    command = [sys.executable, "-m", "show1_core", "generate", "a cat", "--models-dir", str(tiny_root), *QUICK, "-o", "same.mp4"]
    runs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=240), run.communicate()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, (_, err) in results if code == 2)
    assert "error:" in loser and "same.mp4" in loser and "Traceback" not in loser
    assert _frames(tmp_path / "same.mp4") == 8
    assert _leftovers(tmp_path) == ["same.mp4", "same_sheet.png"]


def test_an_encoder_dies_with_its_parent_even_after_sigkill(tmp_path):
    """An encoder that never reads its input (``sleep``) still dies when show1 is killed: prctl, not pipe EOF."""
    script = textwrap.dedent(
        """
        import os, signal, subprocess, sys
        from show1_core.encoder import _die_with_parent

        child = subprocess.Popen(["sleep", "60"], preexec_fn=_die_with_parent())
        print(child.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9
    assert _wait_until_gone(int(done.stdout))


def test_sigkill_while_generate_writes_leaves_no_orphan_and_the_next_run_no_partial_file(tiny_root, tmp_path):
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from show1_core.encoder import Mp4Encoder
        from show1_core.cli import main

        real = Mp4Encoder.send

        def killed(self, frame):
            real(self, frame)
            Path("encoder.pid").write_text(str(self.process.pid))
            os.kill(os.getpid(), signal.SIGKILL)

        Mp4Encoder.send = killed
        sys.exit(main(["generate", "a cat", "--models-dir", {str(tiny_root)!r}, *{QUICK!r}, "-o", "keep.mp4"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == -9, done.stderr
    assert _wait_until_gone(int((tmp_path / "encoder.pid").read_text())), "the encoder outlived show1"
    partial = [name for name in _leftovers(tmp_path) if ".partial-" in name]
    assert len(partial) == 1 and partial[0].startswith(".keep.mp4.partial-")

    again = _show1("generate", "a cat", "--models-dir", str(tiny_root), *QUICK, "-o", "keep.mp4", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"removed {tmp_path / partial[0]}" in again.stderr
    assert _leftovers(tmp_path) == ["encoder.pid", "keep.mp4", "keep_sheet.png"]
    assert _frames(tmp_path / "keep.mp4") == 8


def test_a_full_disk_is_named_in_one_line(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video_io, "_write_animation", disk_full)
    with pytest.raises(OutputError, match=r"the disk is full \(\d+ bytes free\)") as caught:
        write_video(_video(), tmp_path / "f10.gif", fps=8)
    assert "\n" not in str(caught.value)
    assert _leftovers(tmp_path) == []
