"""Smoke test of benchmarks/real_models.py on one small real model (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / ".cache" / "real-models" / "silero_vad_openvino_16k.onnx"


@pytest.mark.skipif(not MODEL.is_file(), reason="run python tools/fetch_models.py first")
def test_sweep_row_of_a_fixed_shape_model() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "real_models.py"),
            "--only",
            MODEL.name,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["model"] == MODEL.name
    assert row["bare"] == row["no_flags"] == row["shapes"] == "ok"
    assert 0 <= row["fp16_max_abs_error"] < 0.05 and row["seconds"] > 0
