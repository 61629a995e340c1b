"""Smoke test of benchmarks/bench_caffe.py's code path on LeNet (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_runs_floor_and_trtimport_on_a_tiny_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_caffe.py"),
            "--prototxt",
            str(REPO / "tests" / "data" / "caffe" / "LeNet.prototxt"),
            "--cache",
            str(tmp_path),
            "--steps",
            "floor,trtimport,trtimport-io",
            "--repeat",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    steps = {r["step"]: r for r in report["results"]}
    assert all(steps[s]["finished"] for s in ("floor", "trtimport", "trtimport-io"))
    assert steps["floor"]["output_bytes"] == report["caffemodel_bytes"]
    assert steps["trtimport"]["peak_rss"] > 0 and steps["trtimport"]["seconds"] > 0
    assert len(list(tmp_path.glob("LeNet-*-seed0.caffemodel"))) == 1
