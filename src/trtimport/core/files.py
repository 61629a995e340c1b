"""Write output files atomically: a temporary file beside the target, renamed on success."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it to ``dest`` only if the block succeeds.

    A failure, an exception or Ctrl-C removes the temporary file and leaves ``dest`` untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(dest: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp, tmp.open("wb") as f:
        f.write(data)


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
