"""What a batch has left to do in its output folder: skip finished videos, retry failed ones, and refuse to mix
settings or to overwrite files the batch did not write."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import OutputError
from .items import BatchItem
from .manifest import DONE, FAILED, WRITING, ManifestRow


@dataclass
class Progress:
    """A batch's items sorted by what they need."""

    finished: list[BatchItem] = field(default_factory=list)
    """Made before with these settings and present: skipped."""
    todo: list[BatchItem] = field(default_factory=list)
    """To make now (new, failed before, lost in flight, or with --overwrite made with other settings)."""
    retried: int = 0
    """Of :attr:`todo`, those that failed before."""
    replaced: int = 0
    """Of :attr:`todo`, those made before with other settings or seeds (with --overwrite)."""


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key} {a!r} -> {b!r}")
    return found


def sort_items(
    items: Sequence[BatchItem],
    hashes: Mapping[str, str],
    settings: Mapping[str, dict],
    latest: Mapping[str, ManifestRow],
    folder: Path,
    overwrite: bool,
) -> Progress:
    """Sort ``items`` by the manifest's ``latest`` rows (``hashes`` and ``settings``: each item's output settings).

    Raises :class:`OutputError`, before any work, for videos of ``folder`` made with other settings or
    seeds (unless ``overwrite``) and for files in the way that the batch did not write.
    """
    progress = Progress()
    changed: list[tuple[BatchItem, ManifestRow]] = []
    foreign: list[Path] = []
    for item in items:
        row = latest.get(item.name)
        path = folder / item.file_name
        same = row is not None and row.settings_hash == hashes[item.name] and row.seed == item.settings.seed
        if row is not None and row.status == DONE and same and path.is_file():
            progress.finished.append(item)
            continue
        if row is not None and row.status in (DONE, WRITING) and not same:
            changed.append((item, row))
        elif row is None and (path.exists() or path.is_symlink()):
            foreign.append(path)
        progress.retried += row is not None and row.status == FAILED
        progress.todo.append(item)
    if changed and not overwrite:
        item, row = changed[0]
        what = _differences(row.settings, settings[item.name])
        if row.seed != item.settings.seed:
            what.append(f"seed {row.seed} -> {item.settings.seed}")
        raise OutputError(
            f"{folder} holds {len(changed)} video(s) made with other settings (e.g. {item.file_name}: {'; '.join(what[:4])}). "
            "Pass --overwrite to make them again with these settings, or choose another --out folder"
        )
    if foreign and not overwrite:
        names = ", ".join(path.name for path in foreign[:3])
        raise OutputError(
            f"{folder} already holds {len(foreign)} file(s) this batch would write but did not make ({names}); "
            "pass --overwrite to replace them, or choose another --out folder"
        )
    progress.replaced = len(changed)
    return progress
