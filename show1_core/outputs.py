"""Output files that are never lost, never half-written and never overwritten by surprise.

Every file show1 writes goes through :func:`atomic_write`: the content is written to a hidden
temporary name in the destination folder (``.name.mp4.partial-1a2b3c4d.mp4``), checked by the
caller, and only then renamed over the destination. An error or Ctrl-C removes the temporary
file, so a destination either holds a complete, verified file or is untouched.
:func:`check_destinations` refuses, before any work starts, destinations that exist (unless
overwriting is asked for), that sit in a file used as a folder, or in a folder that cannot be written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Iterator

from .errors import OutputError

PARTIAL_MARK = ".partial-"


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def temporary_name(path: Path) -> Path:
    """A hidden, unique sibling of ``path`` with the same suffix (so writers pick the same format)."""
    return path.with_name(f".{path.name}{PARTIAL_MARK}{secrets.token_hex(4)}{path.suffix}")


@contextlib.contextmanager
def atomic_write(path: Path | str) -> Iterator[Path]:
    """Yield an absolute temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The temporary path never starts with ``-`` (it is absolute), so external tools cannot take it
    for an option. If the block raises (including ``KeyboardInterrupt``), the temporary file is
    removed and ``path`` is left as it was. Failures to create or rename become :class:`OutputError`.
    """
    path = Path(path).absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_name(path)
        temporary.open("xb").close()  # reserve the name (honours the umask, unlike mkstemp)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {_reason(err)}") from err
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {_reason(err)}") from err
    finally:
        temporary.unlink(missing_ok=True)


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _check_folder(folder: Path) -> None:
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise OutputError(f"cannot write into {folder}: {existing} is a file, not a folder")
    probe = temporary_name(existing / "write-check")
    try:
        probe.open("xb").close()
    except OSError as err:
        hint = " (a read-only file system)" if err.errno == errno.EROFS else ""
        raise OutputError(f"cannot write into {folder}: {_reason(err)}{hint}. Choose another output location") from err
    probe.unlink(missing_ok=True)


def check_destinations(paths: list[Path], overwrite: bool = False) -> None:
    """Refuse destinations that cannot be written, before any work starts.

    Raises :class:`OutputError` for a destination that is a folder, one that exists when
    ``overwrite`` is false (naming every such file and the flag that allows it), and a
    destination folder that is a file or cannot be written.
    """
    paths = [Path(p).absolute() for p in paths]
    folders = [p for p in paths if p.is_dir()]
    if folders:
        raise OutputError(f"{folders[0]} is a folder; give a file name for the output")
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        names = ", ".join(str(p) for p in existing)
        raise OutputError(
            f"refusing to overwrite existing file(s): {names}. Pass --overwrite to replace them, or choose another "
            "output name"
        )
    for folder in dict.fromkeys(p.parent for p in paths):
        _check_folder(folder)
