"""Output files that are never lost, never half-written and never overwritten by surprise.

Every file show1 writes goes through :func:`atomic_write`: the content is written to a hidden
temporary name in the destination folder (``.name.mp4.partial-<pid>-1a2b3c4d.mp4``), checked by the
caller, and only then moved to the destination. An error or Ctrl-C removes the temporary
file, so a destination either holds a complete, verified file or is untouched. Without
``overwrite`` the move is one atomic no-replace step (a hard link), so of two runs writing one
name exactly one succeeds. A run killed outright (``SIGKILL``, power loss) leaves its temporary
file; its name carries the process id, and :func:`remove_leftovers` deletes those of dead runs.
:func:`check_destinations` refuses, before any work starts, destinations that exist (unless
overwriting is asked for), that sit in a file used as a folder, or in a folder that cannot be written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from .errors import OutputError

PARTIAL_MARK = ".partial-"


def disk_full(folder: Path) -> str:
    """What to say when the disk under ``folder`` is full."""
    return f"the disk is full ({shutil.disk_usage(folder).free} bytes free)"


def _reason(err: OSError, folder: Path) -> str:
    return disk_full(folder) if err.errno == errno.ENOSPC else err.strerror or str(err)


def temporary_name(path: Path) -> Path:
    """A hidden, unique sibling of ``path`` with the same suffix (so writers pick the same format), naming this process."""
    return path.with_name(f".{path.name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_leftovers(path: Path | str) -> list[Path]:
    """Delete the temporary files (or folders) of ``path`` that runs killed while writing it left behind; returns them.

    A leftover is recognised by its name (:func:`temporary_name`) and its process no longer running.
    """
    path = Path(path).absolute()
    pattern = re.compile(re.escape(f".{path.name}{PARTIAL_MARK}") + r"(\d+)-[0-9a-f]{8}" + re.escape(path.suffix))
    removed = []
    if path.parent.is_dir():
        for item in path.parent.iterdir():
            match = pattern.fullmatch(item.name)
            if match and not _is_running(int(match.group(1))):
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)
                removed.append(item)
    return removed


def _move_into_place(temporary: Path, path: Path, overwrite: bool) -> None:
    """Rename ``temporary`` to ``path``; without ``overwrite``, refuse atomically if ``path`` exists."""
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        try:
            os.link(temporary, path)  # fails if path exists, however close the other writer
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: claim the name exclusively, then fill it
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            os.replace(temporary, path)
    except FileExistsError as err:
        raise OutputError(
            f"{path} appeared while this run was writing it (another run?); it was kept and this result discarded. "
            "Pass --overwrite to replace it, or choose another output name"
        ) from err
    temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: Path | str, overwrite: bool = True) -> Iterator[Path]:
    """Yield an absolute temporary path beside ``path``; move it to ``path`` when the block succeeds.

    The temporary path never starts with ``-`` (it is absolute), so external tools cannot take it
    for an option. If the block raises (including ``KeyboardInterrupt``), the temporary file is
    removed and ``path`` is left as it was. Without ``overwrite``, a ``path`` that exists when the
    block ends is kept and :class:`OutputError` raised. Failures to create or move become
    :class:`OutputError` (a full disk is named as such).
    """
    path = Path(path).absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        temporary = temporary_name(path)
        temporary.open("xb").close()  # reserve the name (honours the umask, unlike mkstemp)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {_reason(err, path.parent)}") from err
    try:
        yield temporary
        _move_into_place(temporary, path, overwrite)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {_reason(err, path.parent)}") from err
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
        raise OutputError(f"cannot write into {folder}: {_reason(err, existing)}{hint}. Choose another output location") from err
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
            f"refusing to overwrite existing file(s): {names}. Pass --overwrite to replace them, or choose another output name"
        )
    for folder in dict.fromkeys(p.parent for p in paths):
        _check_folder(folder)
