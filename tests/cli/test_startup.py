"""`trtimport --help` and `trtimport formats` import no heavy framework (-X importtime)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "onnxruntime", "tensorrt", "tensorrt_rtx", "cv2", "torch")


def imported_modules(*args: str) -> set[str]:
    """Top-level module names imported by ``python -X importtime -m trtimport ARGS``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trtimport", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "trtimport" in names
    return names


@pytest.mark.parametrize("args", [("--help",), ("formats",), ("convert", "--help")])
def test_startup_imports_no_heavy_module(args: tuple[str, ...]) -> None:
    heavy = imported_modules(*args) & set(HEAVY)
    assert not heavy, f"trtimport {' '.join(args)} imported {sorted(heavy)}"


#: What ``--help`` needs no more of: dataclasses (with inspect, ast and dis, ~8 ms) comes with
#: the options classes, which are built only once a command runs; the signal handlers and
#: their ``signal`` module once the arguments are parsed.
NOT_FOR_HELP = ("dataclasses", "inspect", "signal", "math")


@pytest.mark.parametrize("args", [("--help",), ("convert", "--help")])
def test_help_builds_no_options_classes(args: tuple[str, ...]) -> None:
    extra = imported_modules(*args) & set(NOT_FOR_HELP)
    assert not extra, f"trtimport {' '.join(args)} imported {sorted(extra)}"
