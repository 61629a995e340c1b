"""Write output files atomically: a temporary file beside the target, renamed on success."""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it to ``dest`` only if the block succeeds.

    A failure, an exception or Ctrl-C removes the temporary file and leaves ``dest`` (an older
    output, say) untouched, so ``dest`` is never a partial file and nothing is lost.
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


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file.

    The file is mapped, not read: one hash call over the page cache, without copying 100 MB
    models through Python buffers (whose page faults cost more system time than the copy).
    """
    with path.open("rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return hashlib.sha256().hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return hashlib.sha256(view).hexdigest()


FileHashes = list[tuple[Path, str]]


class BackgroundHashes:
    """SHA-256 of some files, computed on a thread so that it overlaps with parsing and building.

    (A plain thread: ``concurrent.futures`` would import ``logging`` on every run.)
    """

    def __init__(self, paths: list[Path]) -> None:
        self._paths = [p for p in paths if p.is_file()]
        self._hashes: FileHashes = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="trtimport-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._hashes = [(p, sha256_file(p)) for p in self._paths]
        except BaseException as err:  # re-raised in result()
            self._error = err

    def result(self) -> FileHashes:
        """Wait for the hashes; re-raises an error from reading the files."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._hashes
