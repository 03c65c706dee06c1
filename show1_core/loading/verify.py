"""Checking checkpoint files against the Hub's recorded sizes and checksums, and remembering the result.

After a download every file is compared with what the Hub records for it: the sha256 of files
stored with Git LFS (weights), the git blob id of the others (configs, tokenizers). What matched
is written to ``.show1-verified.json`` in the checkpoint folder with each file's size and
modification time, so later loads only ``stat`` the files (:func:`check_recorded`) and hash a file
again only when it changed. ``show1 download NAME --verify`` re-hashes everything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import CorruptCheckpointError, OutputError
from ..outputs import atomic_write

MARKER = ".show1-verified.json"
CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Expected:
    """What the Hub records for one file: its size and either its LFS sha256 or its git blob id."""

    size: int
    sha256: str | None = None
    git_sha1: str | None = None


def hub_record(repo_id: str, patterns: list[str]) -> tuple[str, dict[str, Expected]]:
    """The commit of ``repo_id``'s main branch and the recorded files matching ``patterns``."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    info = HfApi().model_info(repo_id, files_metadata=True)
    wanted = set(filter_repo_objects([s.rfilename for s in info.siblings or []], allow_patterns=patterns))
    return info.sha, {
        s.rfilename: Expected(s.size, s.lfs.sha256 if s.lfs else None, None if s.lfs else s.blob_id)
        for s in info.siblings or []
        if s.rfilename in wanted
    }


def matches(path: Path, expected: Expected) -> bool:
    """Whether ``path`` has the recorded size and checksum (reads the whole file)."""
    size = path.stat().st_size
    if size != expected.size:
        return False
    digest = hashlib.sha256() if expected.sha256 else hashlib.sha1(f"blob {size}\0".encode())
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest() == (expected.sha256 or expected.git_sha1)


def read_marker(folder: Path) -> dict | None:
    """The verification record of a checkpoint folder (``None`` if absent or unreadable)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("files"), dict) else None


def _write_marker(folder: Path, marker: dict) -> None:
    try:
        with atomic_write(Path(folder) / MARKER) as temporary:
            temporary.write_text(json.dumps(marker, indent=1, sort_keys=True))
    except OutputError:  # a read-only folder: files are simply hashed again next time they change
        pass


def _recorded(entry: dict) -> Expected:
    return Expected(entry["size"], entry.get("sha256"), entry.get("git_sha1"))


def recorded_files(marker: dict) -> dict[str, Expected]:
    """The files a verification record lists, as the Hub recorded them."""
    return {name: _recorded(entry) for name, entry in marker["files"].items()}


def _unchanged(path: Path, entry: dict | None, expected: Expected) -> bool:
    if entry is None or _recorded(entry) != expected:
        return False
    stat = path.stat()
    return stat.st_size == entry["size"] and stat.st_mtime_ns == entry.get("mtime_ns")


def verify_folder(folder: Path, repo_id: str, revision: str, expected: dict[str, Expected], *, full: bool = False) -> list[str]:
    """Compare the files of ``folder`` that ``expected`` lists with their record; return the bad ones.

    Files absent from the folder are skipped (the caller checks completeness). Files verified
    before and unchanged since (same size and modification time) are not read again unless
    ``full``. Good files are recorded in the folder's marker.
    """
    folder = Path(folder)
    marker = read_marker(folder) or {"files": {}}
    files = marker["files"]
    bad = []
    for name, record in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            continue
        if not full and _unchanged(path, files.get(name), record):
            continue
        if matches(path, record):
            files[name] = dict(asdict(record), mtime_ns=path.stat().st_mtime_ns)
        else:
            files.pop(name, None)
            bad.append(name)
    marker.update(repo_id=repo_id, revision=revision)
    _write_marker(folder, marker)
    return bad


def check_recorded(folder: Path, fix_hint: str) -> None:
    """Raise :class:`CorruptCheckpointError` if a file verified earlier has changed since.

    Only files whose size or modification time differ from the record are read again; a
    rewritten file with the recorded checksum is accepted (and re-recorded).
    """
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is None:
        return
    changed, touched = [], False
    for name, entry in marker["files"].items():
        path = folder / name
        if not path.is_file() or _unchanged(path, entry, _recorded(entry)):
            continue
        if matches(path, _recorded(entry)):
            entry["mtime_ns"], touched = path.stat().st_mtime_ns, True
        else:
            changed.append(name)
    if changed:
        raise CorruptCheckpointError(
            f"{', '.join(changed)} in {folder} no longer match the checksums recorded when they were downloaded "
            f"(damaged or replaced). {fix_hint}"
        )
    if touched:
        _write_marker(folder, marker)
