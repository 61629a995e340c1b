"""Atomic outputs and source hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from trtimport.core.files import BackgroundHashes, atomic_path, sha256_file


@pytest.mark.parametrize("content", [b"", b"x" * 5_000_001])
def test_sha256_file_matches_hashlib(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    assert sha256_file(path) == hashlib.sha256(content).hexdigest()
    assert BackgroundHashes([path, tmp_path / "absent"]).result() == [
        (path, hashlib.sha256(content).hexdigest())
    ]


def test_atomic_path_keeps_the_old_file_when_the_block_fails(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_path(dest) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert dest.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [dest]
