"""Names from workflow JSON for things inside model folders: checkpoint folders, LoRAs, single-file encoders.

Workflow files can be written by anyone, so a name is a path relative to one of the folders
searched: absolute paths, drive letters and ``..`` are refused, and so are names no file
system accepts (a NUL character, a part longer than :data:`MAX_NAME_BYTES`), which would
otherwise fail with an ``OSError`` when the file system is asked. Links that lead out of a
folder are the callers' to refuse, once the name is joined to a folder.
"""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

from show1_core import InputError

MAX_NAME_BYTES = 255
"""The longest file name (one path part) common file systems accept."""


class RefusedName(InputError):
    """A name that cannot be a path inside a model folder; the message says why, for the caller to phrase."""


def relative_name(name: str, kind: str) -> PurePosixPath:
    """``name`` as a path relative to a model folder (surrounding spaces dropped, ``\\`` read as ``/``).

    Raises :class:`RefusedName` for an empty name, an absolute path, a drive letter, a ``..``
    part, a NUL character or a part over :data:`MAX_NAME_BYTES`; ``kind`` ("folder", "file")
    names the parts in that message.
    """
    text = str(name).strip().replace("\\", "/")
    relative = PurePosixPath(text)
    if not text:
        raise RefusedName("no name was given")
    if relative.is_absolute() or PureWindowsPath(text).drive or ".." in relative.parts:
        raise RefusedName("absolute paths and '..' are not allowed")
    if "\0" in text or any(len(part.encode()) > MAX_NAME_BYTES for part in relative.parts):
        raise RefusedName(f"{kind} names are at most {MAX_NAME_BYTES} bytes, without NUL characters")
    return relative
