"""The H.264 encoder: an ffmpeg process (the binary imageio-ffmpeg ships) fed raw frames on a pipe.

The encoder never outlives show1: on Linux it is killed the moment the show1 process dies
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``, even after ``SIGKILL``), and everywhere it stops at the end
of its input when the pipe closes. It runs in its own process group, so Ctrl-C reaches show1
alone, which then stops the encoder and removes the unfinished file.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Callable

from .errors import OutputError
from .outputs import disk_full

PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal a Linux process receives when its parent dies."""
CRF = 10
"""x264 quality (0 lossless .. 51 worst)."""


def _die_with_parent() -> Callable[[], None]:
    """The ``preexec_fn`` of the encoder: its own process group and, on Linux, death with this process."""
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None

    def in_child() -> None:
        os.setpgrp()
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before the line above ran
                os._exit(1)

    return in_child


class Mp4Encoder:
    """One ffmpeg process writing ``(width, height)`` rgb24 frames to ``path`` as H.264 (yuv420p)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        import imageio_ffmpeg

        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{size[0]}x{size[1]}",
            "-r",
            str(Fraction(fps).limit_denominator()),
            "-i",
            "-",
            "-an",
            "-vcodec",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            str(CRF),
            str(path),
        ]
        self.path = path
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent()
        )

    def send(self, frame: bytes) -> None:
        """Pass one frame to the encoder."""
        try:
            self.process.stdin.write(frame)
        except BrokenPipeError:
            self.finish()  # the encoder stopped: report why

    def finish(self) -> None:
        """Close the input and wait for the file; raise :class:`OutputError` with ffmpeg's reason if it failed."""
        _, errors = self.process.communicate()
        if self.process.returncode != 0:
            lines = errors.decode(errors="replace").strip().splitlines() or [f"exit status {self.process.returncode}"]
            reason = disk_full(self.path.parent) if "No space left on device" in lines[-1] else lines[-1]
            raise OutputError(f"the encoder failed while writing {self.path.name}: {reason}")

    def abort(self) -> None:
        """Stop the encoder at once (after an error or an interruption)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
