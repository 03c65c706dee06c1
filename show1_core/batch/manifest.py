"""``DIR/manifest.jsonl``: one JSON line per finished or failed video, appended as each one ends.

A row is written (and synced to disk) after its video is in place, so a finished video is never
forgotten; a ``writing`` row before the move claims the file name, so a run stopped between the two
is known to have written it. Running the batch again reads the last row of each item: ``done``
(with its file present) is skipped, anything else is made again. A line cut short by a killed run
is ignored.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.jsonl"
DONE, FAILED, WRITING = "done", "failed", "writing"


@dataclass(frozen=True)
class ManifestRow:
    """What became of one video of a batch."""

    item: str
    """The video's name (its file name without ``.mp4``)."""
    status: str
    """``done``, ``failed``, or ``writing`` (its file was being moved into place)."""
    prompt: str
    line: int
    """Where the prompt is in the prompt file."""
    sample: int
    seed: int
    settings_hash: str
    file: str | None = None
    """The video's file name in the output folder (``done`` and ``writing`` rows)."""
    seconds: float | None = None
    """Time the video took on its worker(s)."""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Of :attr:`seconds`, each stage pool's part (``text``, ``keyframes``, ... ``latent_sr``)."""
    error: str | None = None
    """Why it failed."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Everything that decided the video besides prompt and seed (:func:`~show1_core.batch.options.output_settings`)."""
    finished: str = ""
    """When the row was written (UTC, ISO 8601)."""


class Manifest:
    """The manifest of one output folder."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / MANIFEST_NAME
        self.skipped_lines = 0
        """Lines of the last :meth:`rows` that could not be read (cut short by a killed run)."""

    def rows(self) -> list[ManifestRow]:
        """Every readable row, in the order written."""
        self.skipped_lines = 0
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                rows.append(ManifestRow(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                self.skipped_lines += 1
        return rows

    def latest(self) -> dict[str, ManifestRow]:
        """The last row of each item."""
        return {row.item: row for row in self.rows()}

    def append(self, row: ManifestRow) -> ManifestRow:
        """Write ``row`` (stamped with the time) as one line and sync it to disk; returns the stamped row."""
        stamped = replace(row, finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        line = json.dumps(asdict(stamped), ensure_ascii=False)
        with self.path.open("a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() and not _ends_with_newline(handle):
                handle.write(b"\n")  # finish a line a killed run cut short, so this row stays readable
            handle.write(line.encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return stamped


def _ends_with_newline(handle) -> bool:
    handle.seek(-1, os.SEEK_END)
    last = handle.read(1)
    handle.seek(0, os.SEEK_END)
    return last == b"\n"
