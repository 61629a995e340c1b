"""Write output files atomically: a temporary file beside the target, renamed on success."""

from __future__ import annotations

import _thread
import contextlib
import functools
import os
import re
import stat
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; move it to ``dest`` only if the block succeeds.

    A failure, an exception or Ctrl-C removes the temporary file and leaves ``dest`` (an older
    output, say) untouched, so ``dest`` is never a partial file and nothing is lost.

    The temporary path is ``dest``'s name inside a private folder (mode 0700) created beside
    ``dest``, and the block creates the file itself. That keeps the name's extension for tools
    that look at it, gives the file the permissions of any new file, and keeps ext4 from
    flushing it to disk on close, as it does for a file opened with truncation (a pre-made
    empty file, say; 30-50 ms for a 100 MB engine). A block that writes nothing gives an empty
    file. The previous output's cached pages are dropped first (:func:`drop_cached_pages`).
    """
    dest = Path(dest)
    with _naming(dest, None):
        dest.parent.mkdir(parents=True, exist_ok=True)
        drop_cached_pages(dest)
        folder = private_folder(dest.parent, f".{dest.name}.")
    tmp = folder / dest.name
    try:
        with _naming(dest, folder):
            yield tmp
            if not os.path.lexists(tmp):
                tmp.touch()
            if _exchange(tmp, dest):
                tmp.unlink()  # now the previous output
            else:
                os.replace(tmp, dest)
    finally:
        remove_folder(folder)


@contextlib.contextmanager
def _naming(dest: Path, folder: Path | None) -> Iterator[None]:
    """Give an OSError raised while ``dest`` is written (disk full, read-only, permission
    denied) ``dest`` as its file name, instead of none or a temporary one, so that the error
    names the output the user asked for."""
    try:
        yield
    except OSError as err:
        name = err.filename
        if name is None or folder is None or str(name).startswith(str(folder)):
            err.filename = str(dest)
        raise


def private_folder(parent: Path, prefix: str) -> Path:
    """Make a new folder in ``parent`` that only this user can enter:
    ``PREFIX<pid>.<random>.tmp``.

    The process id in the name lets a later run remove the folder if this process is killed
    before it can (:func:`clean_stale_folders`, done here once per
    folder and process). Like ``tempfile.mkdtemp``, which is not used because importing
    ``tempfile`` (with ``shutil`` and ``random``) costs ~6 ms on every run
    (docs/performance.md).
    """
    _clean_once(Path(parent))
    for _ in range(100):
        folder = Path(parent) / f"{prefix}{os.getpid()}.{os.urandom(5).hex()}.tmp"
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{parent}: could not make a private folder named {prefix}*.tmp")


@functools.cache
def _clean_once(parent: Path) -> None:
    clean_stale_folders(parent)


#: A temporary folder made by :func:`trtimport.core.files.private_folder`:
#: ``.NAME.<pid>.<10 hex>.tmp`` beside an output, or ``trtimport-[what-]<pid>.<hex>.tmp``.
STALE_NAME = re.compile(r"^(?:\..*\.|trtimport-(?:[a-z]+-)?)(\d+)\.[0-9a-f]{10}\.tmp$")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # never a process of ours: leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def clean_stale_folders(parent: Path) -> list[Path]:
    """Remove the temporary folders in ``parent`` that trtimport processes which no longer run
    made (killed before they could clean up); returns them. Only this user's folders whose
    recorded process id is not running are touched; errors are ignored."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    uid = os.geteuid()
    for entry in entries:
        match = STALE_NAME.match(entry.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        remove_folder(Path(entry.path))
        removed.append(Path(entry.path))
    return removed


def remove_folder(folder: Path) -> None:
    """Remove ``folder`` and whatever is left in it; errors are ignored."""
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        return
    except OSError:  # not empty: a failed block, or files a tool left beside its own
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


class WorkFolder:
    """A private temporary folder for intermediate files, made on first use.

    Importers that parse a model file as it is never ask for one, so most ONNX builds make
    none. :meth:`close` removes it; so does the garbage collector or the end of the process.
    """

    def __init__(self, prefix: str = "trtimport-") -> None:
        self._prefix = prefix
        self._path: Path | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def path(self) -> Path:
        """The folder (made now if it was not yet)."""
        if self._path is None:
            import tempfile

            self._path = private_folder(Path(tempfile.gettempdir()), self._prefix)
            self._finalizer = weakref.finalize(self, remove_folder, self._path)
        return self._path

    @property
    def made(self) -> bool:
        """Whether the folder exists (was asked for and not yet removed)."""
        return self._path is not None

    def relative(self, path: Path) -> Path | None:
        """Where ``path`` is inside the folder; None if it is elsewhere or none was made."""
        if self._path is None:
            return None
        folder, target = self._path.resolve(), Path(path).resolve()
        return target.relative_to(folder) if target.is_relative_to(folder) else None

    def close(self) -> None:
        """Remove the folder and everything in it."""
        if self._finalizer is not None:
            self._finalizer()
        self._path = self._finalizer = None


class SignalsHeld:
    """Holds Ctrl-C, SIGTERM and SIGHUP back from :meth:`start` to the end of the ``with``
    block, where a signal that arrived meanwhile is delivered.

    A command writing several outputs renames them into place one after the other; held
    signals make that last step all or nothing. Only the main thread can hold them (elsewhere,
    and where ``pthread_sigmask`` does not exist, this does nothing).
    """

    NAMES = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self._held: set[int] = set()

    def __enter__(self) -> SignalsHeld:
        return self

    def start(self) -> None:
        """Hold the signals from now on (again calls do nothing)."""
        import signal

        mask = getattr(signal, "pthread_sigmask", None)
        if self._held or mask is None or threading.current_thread() is not threading.main_thread():
            return
        numbers = {getattr(signal, n) for n in self.NAMES if hasattr(signal, n)}
        mask(signal.SIG_BLOCK, numbers)
        self._held = numbers

    def __exit__(self, *exc: object) -> None:
        if self._held:
            import signal

            held, self._held = self._held, set()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(new: Path, dest: Path) -> bool:
    """Swap ``new`` and an existing regular file ``dest`` in one step (Linux ``renameat2``).

    Why not just ``os.replace``: renaming over an existing file makes ext4 (``auto_da_alloc``)
    start writing the new file back to disk inside the rename, which costs a 100 MB engine
    0.05-0.5 s of system time. An exchange is just as atomic (``dest`` is at every moment the
    old or the new complete file) and leaves the write-back to the kernel's usual schedule.
    False, and nothing done, where ``dest`` is not a regular file or the system or file system
    cannot exchange; the caller then renames.
    """
    if not _is_regular_file(dest):
        return False
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    return (
        renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(dest), _RENAME_EXCHANGE) == 0
    )


def _is_regular_file(path: Path) -> bool:
    """Whether ``path`` itself (not a symlink's target) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


@functools.cache
def _renameat2() -> Any:
    if sys.platform != "linux":
        return None
    import ctypes

    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    except OSError:
        return None


def drop_cached_pages(path: Path) -> None:
    """Tell the kernel that the cached pages of ``path``, an output about to be replaced, are
    no longer needed: clean ones are freed now, dirty ones start going to disk.

    An atomic replacement holds the old and the new file in memory at once. On virtual machines
    whose host backs guest memory lazily (Firecracker, balloon free-page reporting), the new
    file's pages then come from memory the host has to fault in again, and writing a 100 MB
    engine took 0.3-0.6 s in a third of the builds instead of 0.04 s (docs/performance.md).
    Pages freed here are reused at once by the new file. Only regular files are touched (never
    a FIFO, never through a symlink), and nothing happens where ``posix_fadvise`` does not
    exist. Pages that other processes have mapped stay cached.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is None or not _is_regular_file(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return
    try:
        advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def start_dropping_cached_pages(path: Path) -> None:
    """:func:`drop_cached_pages` on a thread, so that starting the write-back of dirty pages
    (an old engine written seconds ago) overlaps with the build. Called again just before the
    new file is written, it then frees the pages that have gone to disk meanwhile.

    A bare ``_thread``: nothing waits for it or for a result, so the machinery of
    ``threading.Thread`` (whose ``start`` waits until the new thread runs) is not needed.
    """
    if getattr(os, "posix_fadvise", None) is not None and os.path.lexists(path):
        _thread.start_new_thread(drop_cached_pages, (path,))


def write_atomic(dest: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp, tmp.open("wb") as f:
        f.write(data)


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically."""
    import shutil

    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


#: How much of a file format detection reads.
HEAD_BYTES = 4096


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first bytes of a file (empty for folders); never blocks on a FIFO."""
    from trtimport.core.input_files import open_input

    if not path.is_file():
        return b""
    with open_input(path, "model") as f:
        return f.read(size)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces into one reused buffer.

    Not mapped: the hashing thread runs while TensorRT loads and builds in the same process,
    and faulting in a 100 MB mapping contends with TensorRT's own memory mappings for the
    process's address-space lock; first builds were 4-5% slower that way (docs/performance.md).
    Reading into a buffer that is faulted in once costs a copy from the page cache instead.
    Both the reads and the hash updates release the GIL.
    """
    import hashlib  # loads OpenSSL's libcrypto: only when a file is hashed

    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


#: ``(path, sha256, stamp)`` per file; ``stamp`` (size, mtime, ctime, when hashed) lets a
#: later build reuse the digest of a file that has not changed since.
FileHashes = list[tuple[Path, str, dict[str, int]]]

#: A digest is reused only for a file whose last change (ctime) is at least this much older
#: than the moment it was hashed: a file written twice within one timestamp tick (coarse
#: kernel clocks; one second on some file systems) could otherwise keep the same stamp.
SETTLED_NS = 2_000_000_000


#: The keys of a stamp: what :func:`_stat_stamp` takes, and when the file was hashed.
_STAMP_KEYS = ("bytes", "mtime_ns", "ctime_ns", "hashed_at_ns")


def _stat_stamp(path: Path) -> dict[str, int]:
    """What must be unchanged for a recorded digest to be reused: size, mtime, ctime."""
    info = os.stat(path)
    return {"bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns}


def reusable_digest(path: Path, recorded: dict[str, Any]) -> str | None:
    """The recorded SHA-256 of ``path`` if the file provably has not changed since, else None.

    ``recorded`` is an entry of an engine sidecar's ``source.files``. As with git's index, the
    proof is the file's size, modification and status-change times (ctime cannot be set back
    by tools like ``touch``), taken when the digest was computed, plus that the file had
    settled by then.
    """
    digest, hashed_at = recorded.get("sha256"), recorded.get("hashed_at_ns")
    try:
        now = _stat_stamp(path)
    except OSError:
        return None
    same = (
        isinstance(digest, str)
        and isinstance(hashed_at, int)
        and recorded.get("path") == str(path)
        and all(recorded.get(key) == value for key, value in now.items())
        and now["ctime_ns"] <= hashed_at - SETTLED_NS
    )
    return digest if same else None


class BackgroundHashes:
    """SHA-256 of some files, computed on a thread so that it overlaps with parsing and building.

    ``known`` maps a path to the sidecar entry of an earlier build; a file that provably has
    not changed since (:func:`reusable_digest`) is not read again, which saves a second per
    1.5 GB of model. That check is a ``stat`` and is made at once; a thread is started only
    for the files that must be read. (A plain thread: ``concurrent.futures`` would import
    ``logging`` on every run.)
    """

    def __init__(self, paths: list[Path], known: dict[str, dict[str, Any]] | None = None) -> None:
        known = known or {}
        #: One entry per file, in order; None until a file that must be read has been hashed.
        self._hashes: list[tuple[Path, str, dict[str, int]] | None] = []
        self._error: BaseException | None = None
        pending: list[tuple[int, Path]] = []
        for path in paths:
            if not path.is_file():
                continue
            recorded = known.get(str(path))
            if recorded is not None and (digest := reusable_digest(path, recorded)) is not None:
                self._hashes.append((path, digest, {k: recorded[k] for k in _STAMP_KEYS}))
            else:
                pending.append((len(self._hashes), path))
                self._hashes.append(None)
        self._thread: threading.Thread | None = None
        if pending:
            self._thread = threading.Thread(
                target=self._run, args=(pending,), name="trtimport-sha256", daemon=True
            )
            self._thread.start()

    def _run(self, pending: list[tuple[int, Path]]) -> None:
        try:
            for index, path in pending:
                self._hashes[index] = self._hash(path)
        except BaseException as err:  # re-raised in result()
            self._error = err

    @staticmethod
    def _hash(path: Path) -> tuple[Path, str, dict[str, int]]:
        hashed_at = time.time_ns()
        stamp = _stat_stamp(path)
        digest = sha256_file(path)
        # A file that changed while it was read gets 0: its digest is never reused.
        changed = _stat_stamp(path) != stamp
        return path, digest, stamp | {"hashed_at_ns": 0 if changed else hashed_at}

    def result(self) -> FileHashes:
        """Wait for the hashes; re-raises an error from reading the files."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return [entry for entry in self._hashes if entry is not None]
