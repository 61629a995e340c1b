"""Checking outputs against inputs, wording OS errors, removing dead runs' leftovers."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from trtimport.core.files import atomic_path, clean_stale_folders, private_folder
from trtimport.core.output_files import check_outputs, os_error_message
from trtimport.errors import UsageError


def test_an_output_may_not_be_an_input_by_any_name(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    (tmp_path / "link").symlink_to(model)
    os.link(model, tmp_path / "hard")
    for name in ("m.onnx", "link", "hard", "./m.onnx"):
        with pytest.raises(UsageError, match="never overwrites its inputs"):
            check_outputs({"-o": tmp_path / name}, [model])
    check_outputs({"-o": tmp_path / "new.engine"}, [model])
    with pytest.raises(UsageError, match="both -o and --save-onnx"):
        check_outputs({"-o": tmp_path / "a", "--save-onnx": tmp_path / "a"}, [model])


def test_outputs_must_be_places_for_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo")
    for path, message in (
        (tmp_path, "is a folder"),
        (Path("/dev/null"), "not a regular file"),
        (tmp_path / "fifo", "not a regular file"),
        (tmp_path / "file" / "out.engine", "is a file, not a folder"),
        (tmp_path / "file" / "sub" / "out.engine", "is a file, not a folder"),
    ):
        with pytest.raises(UsageError, match=message):
            check_outputs({"-o": path})


def test_os_errors_name_the_path_and_what_to_do() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "out.engine")
    assert os_error_message(full) == "out.engine: the disk is full; free space or write elsewhere"
    read_only = OSError(errno.EROFS, "Read-only file system")
    assert os_error_message(read_only, "x.onnx").startswith("x.onnx: the file system is read-only")


def test_a_failed_write_names_the_output_not_the_temporary_file(tmp_path: Path) -> None:
    dest = tmp_path / "out.engine"
    with pytest.raises(OSError) as info, atomic_path(dest) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert info.value.filename == str(dest)
    assert list(tmp_path.iterdir()) == []


def test_only_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    mine = private_folder(tmp_path, ".out.engine.")
    assert f".{os.getpid()}." in mine.name
    dead = tmp_path / ".out.engine.999999999.0123456789.tmp"
    dead.mkdir()
    (dead / "out.engine").write_bytes(b"partial")
    unrelated = tmp_path / ".cache.999999999.tmp"
    unrelated.mkdir()
    assert clean_stale_folders(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, unrelated.name])
