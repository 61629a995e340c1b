"""The fuzz suite: hostile and broken inputs through the CLI, in few processes.

Each group's corpus is built here from seeds and real files (:mod:`fuzz_corpus`) and run in one
memory-limited process that calls the CLI's entry function per case (:mod:`fuzz_harness`); a
failing test lists every case that broke a promise: one ``error:`` line or success, no
traceback, no hang, no crash, no file beyond those asked for, protected files byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fuzz_corpus
import fuzz_harness
import pytest

GROUPS: dict[str, Callable[[Path], list[dict[str, Any]]]] = {
    "onnx": fuzz_corpus.onnx_cases,
    "caffe": fuzz_corpus.caffe_cases,
    "data": fuzz_corpus.data_cases,
    "engines": fuzz_corpus.engine_cases,
    "outputs": fuzz_corpus.output_cases,
}


def flag_cases(folder: Path) -> list[dict[str, Any]]:
    """Every numeric flag at NaN, infinity, negative, zero and huge values."""
    import onnx_models

    folder.mkdir(parents=True, exist_ok=True)
    onnx_models.save(onnx_models.conv_relu(), folder / "m.onnx")
    run = ["run", "m.onnx", "--backend", "onnxruntime", "-q"]
    bench = ["bench", "m.onnx", "--backend", "onnxruntime", "-q"]
    bad = {
        "top-k": (run, ["-1"]),
        "seed": (run, ["-1", str(2**70)]),
        "scale": (run, ["nan", "inf", "0"]),
        "std": (run, ["0", "nan", "1,0,1", "x"]),
        "mean": (run, ["inf", "nan,1"]),
        "streams": (bench, ["0", "-3", "100000"]),
        "warmup": (bench, ["1e308", "-1", "nan"]),
        "duration": (bench, ["1e308", "-1", "inf"]),
        "iterations": (bench, ["0", "-5"]),
        "atol": (["verify", "m.onnx", "-q"], ["-1", "nan"]),
        "rtol": (["verify", "m.onnx", "-q"], ["-1", "inf"]),
        "calib-percentile": (["m.onnx", "--int8", "-q"], ["0", "101", "nan"]),
        "calib-batches": (["m.onnx", "--int8", "-q"], ["0", "-1"]),
        "opset": (["m.onnx", "-q"], ["-1", "0", "99999999999"]),
        "opt-level": (["m.onnx", "-q"], ["-1", "6"]),
        "builder-threads": (["m.onnx", "-q"], ["0", "-1"]),
        "workspace": (["m.onnx", "-q"], ["-1", "nan", "1e400"]),
        "resize": (run, ["0x0", "-5x5", "99999999999999999999x1", "axb"]),
        "input": (run, ["x:0x3x8x8", "x:99999999999999999999x3x8x8", "x:0x1f", "x:1x3x8x-8"]),
        "batch": (["m.onnx", "-q"], ["0/1/2", "4/2/1", "-1/1/1", "nan"]),
        "shapes": (["m.onnx", "-q"], ["x:1x3x8x8/0x3x8x8/1x3x8x8", "x:a/b/c"]),
    }
    cases = []
    for flag, (argv, values) in bad.items():
        for value in values:
            cases.append(
                fuzz_corpus.case(f"flag-{flag}-{value}", [*argv, f"--{flag}", value], folder)
            )
    for usage in (["m.onnx", "--no-such-flag"], ["run"], ["bench", "m.onnx", "--top-k", "x"]):
        cases.append(fuzz_corpus.case(f"usage-{'-'.join(usage)}", usage, folder))
    return cases


GROUPS["flags"] = flag_cases


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_fuzz_group(group: str, tmp_path: Path) -> None:
    cases = GROUPS[group](tmp_path / group)
    results = fuzz_harness.run_cases(cases, tmp_path)
    failures = fuzz_harness.report(cases, results)
    assert not failures, f"{failures}"


def test_hypothesis_command_lines(tmp_path: Path) -> None:
    """hypothesis combines commands, flags and hostile values (option_driver.py) in one
    memory-limited process; the shrunk failing command line, if any, is reported."""
    import subprocess
    import sys

    import numpy as np
    import onnx_models

    onnx_models.save(onnx_models.conv_relu(), tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    np.savez(tmp_path / "calib.npz", x=np.ones((2, 3, 8, 8), np.float32))
    report = tmp_path.parent / f"{tmp_path.name}-report.json"
    driver = Path(fuzz_harness.__file__).with_name("option_driver.py")
    done = subprocess.run(
        [sys.executable, str(driver), str(tmp_path), str(EXAMPLES), str(report)],
        env=fuzz_harness.child_env(),
        preexec_fn=fuzz_harness.limits(fuzz_harness.MEMORY_LIMIT),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and report.exists(), done.stderr[-3000:]
    failure = json.loads(report.read_text()).get("failure")
    assert failure is None, failure


#: Command lines hypothesis tries per CI run (derandomized: the same ones every run).
EXAMPLES = 80
