"""Opening inputs: regular files only, numpy files checked from their headers first."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trtimport.core.input_files import (
    check_input,
    load_npy,
    load_npz,
    max_array_bytes,
    npz_names,
    read_bounded,
)
from trtimport.errors import ModelParseError, UsageError


def test_special_files_are_refused_without_reading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="FIFO"):
        check_input(tmp_path / "fifo", "model")
    with pytest.raises(UsageError, match="character device"):
        read_bounded(Path("/dev/zero"), 10)
    with pytest.raises(UsageError, match="a folder"):
        check_input(tmp_path, "model")
    assert check_input(tmp_path, "model", folder_ok=True)
    with pytest.raises(UsageError, match="no such model"):
        check_input(tmp_path / "none", "model")


def test_read_bounded_refuses_larger_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"12345")
    assert read_bounded(tmp_path / "f", 5) == b"12345"
    with pytest.raises(ModelParseError, match="5 bytes; at most 4"):
        read_bounded(tmp_path / "f", 4)


def test_npy_round_trip_and_fortran_order(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "c.npy", array)
    np.save(tmp_path / "f.npy", np.asfortranarray(array))
    assert np.array_equal(load_npy(tmp_path / "c.npy"), array)
    assert np.array_equal(load_npy(tmp_path / "f.npy"), array)


def test_npy_size_must_match_its_header(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros(100, np.float32))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[:-1])
    (tmp_path / "long.npy").write_bytes(data + b"\0")
    for name in ("short.npy", "long.npy"):
        with pytest.raises(ModelParseError, match="declares 400 bytes"):
            load_npy(tmp_path / name)


def test_huge_declared_arrays_are_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRTIMPORT_MAX_ARRAY_BYTES", "1000")
    assert max_array_bytes() == 1000
    np.save(tmp_path / "a.npy", np.zeros(300, np.float32))
    with pytest.raises(ModelParseError, match=r"1200 bytes.*more than the 1000"):
        load_npy(tmp_path / "a.npy")


@pytest.mark.parametrize("dtype", ["complex64", "U3", "O"])
def test_non_numeric_dtypes_are_refused(tmp_path: Path, dtype: str) -> None:
    array = np.array([1, 2], dtype=dtype)
    np.save(tmp_path / "a.npy", array, allow_pickle=True)
    with pytest.raises(ModelParseError, match="dtype"):
        load_npy(tmp_path / "a.npy")


def test_npz_member_checked_before_it_is_inflated(tmp_path: Path) -> None:
    np.savez(tmp_path / "ok.npz", x=np.ones(3, np.int64), y=np.zeros((2, 2), np.float16))
    assert npz_names(tmp_path / "ok.npz") == ["x", "y"]
    assert load_npz(tmp_path / "ok.npz", ["y"])["y"].shape == (2, 2)
    header = np.lib.format.header_data_from_array_1_0(np.zeros(4, np.float32))
    with (
        zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("x.npy", "w") as member,
    ):
        np.lib.format.write_array_header_1_0(member, header)
        member.write(bytes(10 << 20))
    with pytest.raises(ModelParseError, match="declares 16 bytes"):
        load_npz(tmp_path / "bomb.npz")
