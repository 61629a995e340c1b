"""Files mapped read-only whose array views can be located back in the file.

Importers that read weights straight out of a model file (a caffemodel, a UFF) view them in a
:class:`FileMapping`; :func:`file_region` tells the ONNX writer (:mod:`.writer`) where such a
view lies, so it can refer to the bytes where they are (ONNX external data) or copy them file
to file in the kernel, never through user memory.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np


class FileMapping(mmap.mmap):
    """A read-only mapping of a file that remembers the file and where it is mapped.

    Arrays viewing it can be located back in the file (:func:`file_region`), so that writers
    can copy their bytes file-to-file in the kernel instead of through user memory.
    """

    path: Path
    address: int


def map_file(path: Path) -> FileMapping:
    """Map ``path`` read-only (it must not be empty)."""
    with Path(path).open("rb") as f:
        mapping = FileMapping(f.fileno(), 0, access=mmap.ACCESS_READ)
    mapping.path = Path(path)
    mapping.address = np.frombuffer(mapping, np.uint8, 1).__array_interface__["data"][0]
    return mapping


def file_region(array: np.ndarray) -> tuple[Path, int] | None:
    """``(file, offset)`` of a C-contiguous array that views a :class:`FileMapping`, else None."""
    if not array.flags.c_contiguous:
        return None
    owner: object = array
    while owner is not None and not isinstance(owner, FileMapping):
        owner = owner.obj if isinstance(owner, memoryview) else getattr(owner, "base", None)
    if owner is None:
        return None
    offset = array.__array_interface__["data"][0] - owner.address
    if not 0 <= offset <= len(owner) - array.nbytes:
        return None
    return owner.path, offset
