"""Atomic outputs and source hashing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trtimport.core.files import (
    SETTLED_NS,
    BackgroundHashes,
    WorkFolder,
    _exchange,
    atomic_path,
    drop_cached_pages,
    private_folder,
    sha256_file,
)


@pytest.mark.parametrize("content", [b"", b"x" * 5_000_001])
def test_sha256_file_matches_hashlib(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    assert sha256_file(path) == hashlib.sha256(content).hexdigest()
    [(hashed, digest, stamp)] = BackgroundHashes([path, tmp_path / "absent"]).result()
    assert (hashed, digest) == (path, hashlib.sha256(content).hexdigest())
    assert stamp["bytes"] == len(content) and stamp["mtime_ns"] == path.stat().st_mtime_ns


def test_atomic_path_keeps_the_old_file_when_the_block_fails(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_path(dest) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert dest.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [dest]


def test_atomic_path_over_an_existing_file_swaps_it_in_whole(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old" * 1000)
    dest.chmod(0o600)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(b"new")
    assert dest.read_bytes() == b"new"
    # The previous file (swapped to the temporary name) is gone, and the new file has the
    # permissions of a fresh output, not the old file's.
    assert list(tmp_path.iterdir()) == [dest]
    assert dest.stat().st_mode & 0o777 != 0o600


def test_atomic_path_replaces_a_symlink_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "target.bin"
    target.write_bytes(b"target")
    link = tmp_path / "out.bin"
    link.symlink_to(target)
    with atomic_path(link) as tmp:
        tmp.write_bytes(b"new")
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert target.read_bytes() == b"target"


def test_atomic_path_onto_a_folder_fails_and_keeps_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "out.bin"
    folder.mkdir()
    (folder / "kept").write_bytes(b"x")
    with pytest.raises(OSError), atomic_path(folder) as tmp:
        tmp.write_bytes(b"new")
    assert (folder / "kept").read_bytes() == b"x"
    assert list(tmp_path.iterdir()) == [folder]


@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux's")
def test_exchange_swaps_two_files_and_declines_what_it_cannot_swap(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    assert _exchange(a, b)
    assert (a.read_bytes(), b.read_bytes()) == (b"B", b"A")
    assert not _exchange(a, tmp_path / "absent")
    (tmp_path / "folder").mkdir()
    assert not _exchange(a, tmp_path / "folder")
    assert a.read_bytes() == b"B"


def test_atomic_path_gives_an_empty_file_for_a_block_that_writes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    with atomic_path(dest) as tmp:
        assert tmp.name == "out.bin" and not tmp.exists()
        (tmp.parent / "scratch").write_bytes(b"left by a tool")
    assert dest.read_bytes() == b""
    assert list(tmp_path.iterdir()) == [dest]


def test_work_folder_is_private_made_on_first_use_and_removed(tmp_path: Path) -> None:
    work = WorkFolder()
    assert not work.made and work.relative(tmp_path) is None
    folder = work.path
    assert work.relative(folder / "a" / "m.onnx") == Path("a/m.onnx")
    assert work.relative(tmp_path / "m.onnx") is None
    assert work.made and work.path == folder and folder.stat().st_mode & 0o777 == 0o700
    (folder / "sub").mkdir()
    (folder / "sub" / "file").write_bytes(b"x")
    work.close()
    assert not folder.exists() and not work.made
    work.close()  # twice is fine
    assert private_folder(tmp_path, "p.") != private_folder(tmp_path, "p.")


def _settled(path: Path, content: bytes) -> dict[str, object]:
    """A sidecar entry for ``path`` as a build long after its last change would record it."""
    path.write_bytes(content)
    info = path.stat()
    return {
        "path": str(path),
        "sha256": "0" * 64,  # not the real digest: reuse must show up as this value
        "bytes": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "ctime_ns": info.st_ctime_ns,
        "hashed_at_ns": info.st_ctime_ns + SETTLED_NS,
    }


def test_a_recorded_digest_is_reused_only_for_an_unchanged_settled_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    entry = _settled(path, b"weights")
    [(_, digest, stamp)] = BackgroundHashes([path], {str(path): entry}).result()
    assert digest == "0" * 64 and stamp["hashed_at_ns"] == entry["hashed_at_ns"]
    real = hashlib.sha256(b"weights").hexdigest()
    stale = [
        {**entry, "bytes": 8},  # another size
        {**entry, "mtime_ns": entry["mtime_ns"] - 1},  # touched back or edited
        {**entry, "ctime_ns": entry["ctime_ns"] - 1},
        {**entry, "hashed_at_ns": entry["ctime_ns"] + SETTLED_NS - 1},  # hashed too soon
        {**entry, "path": str(tmp_path / "other.onnx")},
        {k: v for k, v in entry.items() if k != "hashed_at_ns"},  # an older sidecar
    ]
    for recorded in stale:
        [(_, digest, _)] = BackgroundHashes([path], {str(path): recorded}).result()
        assert digest == real, recorded
    # Rewriting the file, even with the same size and modification time, changes its ctime.
    os.utime(path, ns=(entry["mtime_ns"], entry["mtime_ns"]))
    [(_, digest, _)] = BackgroundHashes([path], {str(path): entry}).result()
    assert digest == real


def test_reused_digests_start_no_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.onnx"
    entry = _settled(path, b"weights")

    def no_thread(*args: object, **kwargs: object) -> None:
        raise AssertionError("a thread was started although every digest could be reused")

    monkeypatch.setattr("trtimport.core.files.threading.Thread", no_thread)
    [(hashed, digest, _)] = BackgroundHashes([path], {str(path): entry}).result()
    assert (hashed, digest) == (path, "0" * 64)
    with pytest.raises(AssertionError, match="a thread was started"):
        BackgroundHashes([path])  # nothing recorded: the file must be read


def _resident_bytes(path: Path) -> int:
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.split()[0])


needs_fincore = pytest.mark.skipif(
    shutil.which("fincore") is None or not hasattr(os, "posix_fadvise"),
    reason="needs util-linux's fincore and posix_fadvise",
)


def _clean_file(path: Path) -> bytes:
    """Write random bytes to ``path`` and back to disk, so its cached pages can be dropped."""
    content = os.urandom(4 << 20)
    with path.open("wb") as f:
        f.write(content)
        os.fsync(f.fileno())
    assert _resident_bytes(path) == len(content)
    return content


@needs_fincore
def test_drop_cached_pages_frees_a_clean_file_and_keeps_its_content(tmp_path: Path) -> None:
    path = tmp_path / "old.engine"
    content = _clean_file(path)
    drop_cached_pages(path)
    assert _resident_bytes(path) < len(content) // 4
    assert path.read_bytes() == content
    link = tmp_path / "link.engine"
    link.symlink_to(path)
    drop_cached_pages(link)  # a symlink is left alone
    assert _resident_bytes(path) == len(content)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    drop_cached_pages(fifo)  # returns at once (opening a FIFO to read would block)
    drop_cached_pages(tmp_path / "absent")


@needs_fincore
def test_atomic_path_drops_the_old_outputs_pages_before_the_new_one_is_written(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "out.engine"
    content = _clean_file(dest)
    with atomic_path(dest) as tmp:
        assert _resident_bytes(dest) < len(content) // 4
        assert dest.read_bytes() == content  # still the complete old output
        tmp.write_bytes(b"new")
    assert dest.read_bytes() == b"new"
