"""Smoke test of benchmarks/bench_cli.py on LeNet (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_bench_cli_runs_every_side_on_a_small_net(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_cli.py"),
            "--prototxt",
            str(REPO / "tests" / "data" / "caffe" / "LeNet.prototxt"),
            "--data",
            str(tmp_path),
            "--reps",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "identical to the one bare builds: True; engines identical: True" in out
    for side in ("floor", "bare", "to-onnx", "to-engine", "missing", "unreadable"):
        assert f"| {side} |" in out
    assert "to-engine / bare, peak RSS:" in out
    assert (tmp_path / "lenet.caffemodel").is_file()
