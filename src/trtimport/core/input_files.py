"""Open the files a user hands trtimport: regular files only, sizes checked, reads bounded.

Every input (model, weights, input data, calibration data, sidecar, cache) goes through
:func:`check_input` before anything reads it. A FIFO, a device (``/dev/zero``), a socket or a
folder where a file is expected is one clear :class:`~trtimport.errors.UsageError`, never a
read that hangs or never ends. Numpy files are read from their header first: the declared
shape and dtype must fit the file (and, for ``.npz``, the archive's declared sizes) before any
data is read or decompressed, so memory never exceeds what the file declares, and never
exceeds what this machine has.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING

from trtimport.errors import ModelParseError, TrtImportError, UsageError

if TYPE_CHECKING:
    import numpy as np

#: Largest array a numpy input file may declare, in bytes: half of this machine's memory
#: (``TRTIMPORT_MAX_ARRAY_BYTES`` overrides it).
_ARRAY_FRACTION = 2


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_input(path: Path, what: str = "input", *, folder_ok: bool = False) -> os.stat_result:
    """The status of ``path`` (symlinks followed) if it is a regular file (or a folder where
    ``folder_ok``); otherwise a UsageError naming the path, what it is and what was expected."""
    path = Path(path)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError as err:
        raise UsageError(
            f"{path}: the {what}'s path is not valid UTF-8 (byte {err.start}); TensorRT and "
            "ONNX take UTF-8 paths only: rename it"
        ) from err
    try:
        info = os.stat(path)
    except FileNotFoundError as err:
        kind = "file or folder" if folder_ok else "file"
        raise UsageError(f"{path}: no such {what} (no such {kind})") from err
    except (OSError, ValueError) as err:  # permission, loop, name too long, NUL byte
        raise UsageError(f"{path}: cannot open the {what} ({_reason(err)})") from err
    if stat.S_ISREG(info.st_mode) or (folder_ok and stat.S_ISDIR(info.st_mode)):
        return info
    expected = "a regular file or a folder" if folder_ok else "a regular file"
    raise UsageError(f"{path}: the {what} is {_kind(info.st_mode)}; expected {expected}")


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err)


def open_input(path: Path, what: str = "input") -> IO[bytes]:
    """Open a regular file for reading without ever blocking on a FIFO: opened non-blocking,
    then checked on the open descriptor (so a file swapped meanwhile cannot slip through)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as err:
        raise UsageError(f"{path}: no such file ({what})") from err
    except (OSError, ValueError) as err:
        raise UsageError(f"{path}: cannot open the {what} ({_reason(err)})") from err
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UsageError(f"{path}: the {what} is {_kind(mode)}; expected a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bounded(path: Path, limit: int, what: str = "input") -> bytes:
    """The whole of a regular file of at most ``limit`` bytes; larger is a ModelParseError."""
    with open_input(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise ModelParseError(
                f"{path}: the {what} is {size} bytes; at most {limit} are accepted"
            )
        # Read what the file holds (plus one byte to see it grow): f.read(limit + 1) would
        # allocate the whole limit up front for a small file.
        data = f.read(size + 1)
        if len(data) > size:
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:
        raise ModelParseError(f"{path}: the {what} grew past {limit} bytes while it was read")
    return data


def max_array_bytes() -> int:
    """The most bytes one array read from a user's file may take."""
    override = os.environ.get("TRTIMPORT_MAX_ARRAY_BYTES")
    if override and override.isdigit():
        return int(override)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    return memory // _ARRAY_FRACTION


#: dtype kinds a model input or weight can be: bool, signed/unsigned integer, float.
_NUMERIC_KINDS = "biuf"


def _checked_header(
    f: IO[bytes], source: str, available: int | None
) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Shape, dtype, Fortran order and data bytes declared by the ``.npy`` header at ``f``.

    ``available``: the bytes the file holds after the header, where known; the declared data
    must fit exactly. Raises ModelParseError for a header numpy cannot read, a dtype that is
    not a plain number (strings, objects, complex, structured) or a size that does not fit.
    """
    import numpy as np
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    except Exception as err:  # numpy's header parser raises ValueError, TokenError, …
        raise ModelParseError(
            f"{source}: not a readable .npy header ({type(err).__name__}: {err})"
        ) from err
    if dtype.hasobject:
        raise ModelParseError(
            f"{source}: holds pickled Python objects (dtype {dtype}), which trtimport never "
            "loads; save plain numeric arrays with numpy.save or numpy.savez"
        )
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
        raise ModelParseError(
            f"{source}: holds an array of dtype {dtype}; inputs and weights must be booleans, "
            "integers or floats"
        )
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise ModelParseError(f"{source}: the .npy header declares an invalid shape {shape}")
    count = 1
    for d in shape:
        count *= d
    nbytes = count * dtype.itemsize
    limit = max_array_bytes()
    if nbytes > limit:
        raise ModelParseError(
            f"{source}: declares an array of shape {list(shape)} ({nbytes} bytes), more than "
            f"the {limit} bytes trtimport reads into memory (TRTIMPORT_MAX_ARRAY_BYTES)"
        )
    if available is not None and available - f.tell() != nbytes:
        raise ModelParseError(
            f"{source}: the header declares {nbytes} bytes of data (shape {list(shape)}, "
            f"{dtype}) but the file holds {available - f.tell()}; it is truncated or corrupt"
        )
    return tuple(shape), np.dtype(dtype), bool(fortran), nbytes


def _read_array(f: IO[bytes], source: str, available: int | None) -> np.ndarray:
    import numpy as np

    shape, dtype, fortran, nbytes = _checked_header(f, source, available)
    data = bytearray(nbytes)
    view = memoryview(data)
    got = 0
    while got < nbytes:
        n = f.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            raise ModelParseError(
                f"{source}: the data ends after {got} of {nbytes} bytes; the file is truncated"
            )
        got += n
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def load_npy(path: Path, what: str = "numpy file") -> np.ndarray:
    """An array from a ``.npy`` file, read only once its header is checked (never a pickle)."""
    with open_input(path, what) as f:
        return _read_array(f, str(path), os.fstat(f.fileno()).st_size)


def npz_names(path: Path, what: str = "numpy archive") -> list[str]:
    """The array names of an ``.npz`` (member names without ``.npy``), nothing decompressed."""
    with _open_zip(path, what) as archive:
        return [_array_name(info.filename) for info in archive.infolist()]


def _array_name(member: str) -> str:
    return member[:-4] if member.endswith(".npy") else member


def _open_zip(path: Path, what: str):  # type: ignore[no-untyped-def]
    import zipfile

    f = open_input(path, what)
    try:
        return zipfile.ZipFile(f)
    except Exception as err:  # zipfile raises BadZipFile, NotImplementedError, struct.error, …
        f.close()
        raise ModelParseError(f"{path}: not a readable .npz archive ({err})") from err


def load_npz(
    path: Path, names: list[str] | None = None, what: str = "numpy archive"
) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (those in ``names``, or all), each checked from its header and
    the archive's declared size before it is decompressed; a bad CRC is a ModelParseError."""

    arrays = {}
    with _open_zip(path, what) as archive:
        members = {_array_name(i.filename): i for i in archive.infolist()}
        for name in names if names is not None else list(members):
            info = members[name]
            source = f"{path}: array '{name}'"
            if not info.filename.endswith(".npy"):
                raise ModelParseError(f"{source} is not an .npy member ({info.filename})")
            try:
                with archive.open(info) as member:
                    arrays[name] = _read_array(member, source, info.file_size)
            except TrtImportError:
                raise
            except Exception as err:  # BadZipFile, zlib.error, NotImplementedError, …
                raise ModelParseError(f"{source}: the archive is corrupt ({err})") from err
    return arrays
