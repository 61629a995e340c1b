"""Check where trtimport is asked to write before it reads or builds anything.

An output may never be an input (the same file by device and inode, by resolved path, or
through a symlink or hard link), a folder, a device, a FIFO, or a file inside something that
is not a folder; two outputs may not be one file. Each is one
:class:`~trtimport.errors.UsageError` naming the flag and the path, raised before any work, so
that nothing is ever overwritten that the user gave trtimport to read.
:func:`os_error_message` words the errors the operating system reports while writing (disk
full, read-only, permission denied) for the user. :func:`clean_stale_temp` removes the work
folders that trtimport processes which were killed left behind.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from trtimport.errors import UsageError


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _real(path: Path) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return str(path)


def check_outputs(outputs: Mapping[str, Path | None], inputs: Iterable[Path | None] = ()) -> None:
    """Refuse outputs that would destroy an input or cannot be written as a file.

    ``outputs`` maps what the user calls each output (``-o``, ``--save-onnx``, …) to its path;
    ``inputs`` are every file the command reads. Raises UsageError for the first problem.
    """
    known_inputs = [Path(p) for p in inputs if p is not None]
    input_ids = {i: p for p in known_inputs if (i := _identity(p)) is not None}
    input_reals = {_real(p): p for p in known_inputs}
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        _check_writable_place(flag, path)
        same = input_ids.get(_identity(path) or (-1, -1)) or input_reals.get(_real(path))
        if same is not None:
            raise UsageError(
                f"{path} ({flag}) is the input {same}: trtimport never overwrites its inputs; "
                "write to another file"
            )
        real = _real(path)
        if real in seen:
            raise UsageError(f"{path}: both {seen[real]} and {flag} would write this file")
        seen[real] = flag


def _check_writable_place(flag: str, path: Path) -> None:
    if "\0" in str(path):
        raise UsageError(f"{flag}: the path {path!r} holds a NUL byte")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except NotADirectoryError as err:
        raise UsageError(f"{path} ({flag}): a part of this path is a file, not a folder") from err
    except OSError as err:
        raise UsageError(f"{path} ({flag}): {os_error_message(err, path)}") from err
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(
                f"{path} ({flag}) is a folder; give a file name, e.g. {path / 'model.engine'}"
            )
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(
                f"{path} ({flag}) exists and is not a regular file (a device, FIFO or "
                "socket); trtimport only replaces regular files"
            )
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if os.path.lexists(parent) and not os.path.isdir(parent):
        raise UsageError(f"{path} ({flag}): {parent} is a file, not a folder")


#: errno -> what the user can do about it.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded; free space or write elsewhere",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f) or the file "
    "system allows",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "permission denied; check the file's and its folder's permissions",
    errno.EPERM: "operation not permitted; check the file's and its folder's permissions",
    errno.EISDIR: "it is a folder; give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ENOENT: "no such file or folder",
    errno.EMFILE: "too many open files",
    errno.EIO: "an input/output error from the device",
}


def os_error_message(err: OSError, path: Path | str | None = None) -> str:
    """``PATH: what went wrong; what to do`` for an error the operating system reported."""
    where = path if path is not None else err.filename
    reason = _OS_HINTS.get(err.errno or 0) or err.strerror or str(err)
    return f"{where}: {reason}" if where is not None else reason


def clean_stale_temp() -> list[Path]:
    """:func:`~trtimport.core.files.clean_stale_folders` on the system's temporary folder
    (``TMPDIR`` or ``/tmp``), where work folders live (without importing ``tempfile``, which
    costs every run ~6 ms)."""
    from trtimport.core.files import clean_stale_folders

    return clean_stale_folders(Path(os.environ.get("TMPDIR") or "/tmp"))
