"""A batch's videos: one item per prompt and sample, with its file name, seed and settings.

**Names** follow VBench's convention, ``{prompt}-{sample}.mp4`` (or ``{name}-{sample}.mp4`` where a
JSONL entry gives a ``name``). Characters that no common file system allows in a name (``/ \\ : * ? "
< > |`` and control characters) become ``_``, leading and trailing spaces and dots are dropped, and
the stem is cut to :data:`MAX_STEM_BYTES` bytes of UTF-8. When two entries give the same stem (ignoring
case, as macOS and Windows do), the later ones become ``{stem} (2)``, ``{stem} (3)``, ... in file order.

**Seeds**: an entry with its own ``seed`` gives its samples ``seed``, ``seed + 1``, ...; otherwise sample
``s`` of the prompt on entry ``p`` (both counted from 0) gets :func:`derive_seed` ``(--seed, p, s)``: the
first 8 bytes of ``sha256("show1-batch/{seed}/{p}/{s}")`` as a big-endian number, top bit cleared. It
depends on nothing else, so adding samples or prompts at the end of the file keeps every earlier
video's seed. The manifest records each item's seed: ``show1 generate --seed`` with it (and the
batch's settings) makes the same video.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Sequence

from ..settings import CascadeSettings
from .prompts import PromptEntry
from .settings_dict import with_overrides

MAX_STEM_BYTES = 200
"""Longest file name stem, in bytes of UTF-8 (file systems allow 255 bytes a name; room for ``-N (K).mp4``)."""
UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')
VIDEO_SUFFIX = ".mp4"


@dataclass(frozen=True)
class BatchItem:
    """One video of a batch."""

    name: str
    """File name stem, unique in the batch: ``{prompt}-{sample}``."""
    prompt: str
    line: int
    """Where its prompt is in the prompt file (1-based)."""
    prompt_index: int
    sample_index: int
    settings: CascadeSettings
    """Everything the video is made with, its seed included."""

    @property
    def file_name(self) -> str:
        """The video's file name in the output folder."""
        return f"{self.name}{VIDEO_SUFFIX}"


def derive_seed(base_seed: int, prompt_index: int, sample_index: int) -> int:
    """The seed of sample ``sample_index`` of the prompt on entry ``prompt_index`` (module docstring)."""
    digest = hashlib.sha256(f"show1-batch/{base_seed}/{prompt_index}/{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def safe_stem(text: str) -> str:
    """``text`` usable as a file name stem on every common file system (module docstring)."""
    stem = UNSAFE.sub("_", text).strip(" .")
    encoded = stem.encode("utf-8")[:MAX_STEM_BYTES]
    return encoded.decode("utf-8", errors="ignore").rstrip(" .") or "_"


def unique_stems(wanted: Sequence[str]) -> list[str]:
    """``wanted`` with repeats (ignoring case) renamed ``{stem} (2)``, ``{stem} (3)``, ... in order."""
    taken: set[str] = set()
    stems = []
    for stem in wanted:
        candidate, copy = stem, 1
        while candidate.casefold() in taken:
            copy += 1
            candidate = f"{stem} ({copy})"
        taken.add(candidate.casefold())
        stems.append(candidate)
    return stems


def batch_items(entries: Sequence[PromptEntry], settings: CascadeSettings, samples: int, source: str) -> list[BatchItem]:
    """Every video of the batch: ``samples`` per entry, named and seeded as the module docstring says.

    ``settings`` (whose seed is the batch's ``--seed``) apply to every entry, with an entry's own
    settings on top; ``source`` (the prompt file) names the line of a bad override.
    """
    stems = unique_stems([safe_stem(entry.name or entry.prompt) for entry in entries])
    items = []
    for index, (entry, stem) in enumerate(zip(entries, stems)):
        own = with_overrides(settings, entry.settings, f"{source}:{entry.line}")
        for sample in range(samples):
            seed = entry.seed + sample if entry.seed is not None else derive_seed(settings.seed, index, sample)
            items.append(BatchItem(f"{stem}-{sample}", entry.prompt, entry.line, index, sample, replace(own, seed=seed)))
    return items
