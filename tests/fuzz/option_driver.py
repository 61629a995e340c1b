"""Property-based search over command lines, run inside one memory-limited process.

``python tests/fuzz/option_driver.py FOLDER EXAMPLES REPORT`` lets hypothesis combine
commands, flags and values (NaN, infinities, negative and huge numbers, odd shapes, inputs
named as outputs) on the model ``FOLDER/m.onnx`` and its data, calls the CLI's entry function
for each, and checks the promises of :mod:`fuzz_harness`. The search is derandomized (the same
command lines every run); the shrunk failing example, if any, is written to ``REPORT``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import driver
import fuzz_harness

FOLDER = Path(sys.argv[1])
PROTECTED = ["m.onnx", "x.npy", "calib.npz"]

numbers = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e308", "-0", "1e-320", "3", "x", ""]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
dims = st.lists(
    st.one_of(st.integers(-2, 10), st.just(2**62), st.sampled_from(["?", "0x1", ""])),
    min_size=0,
    max_size=5,
).map(lambda ds: "x".join(map(str, ds)))
paths = st.sampled_from(
    ["m.onnx", "x.npy", "calib.npz", "out.engine", "o.onnx", "/dev/null", ".", "m.onnx/x", ""]
)
#: flag -> strategy of its value (None: a switch).
FLAGS: dict[str, Any] = {
    "--top-k": numbers,
    "--seed": numbers,
    "--scale": numbers,
    "--mean": numbers,
    "--std": numbers,
    "--resize": st.one_of(dims, numbers),
    "--input": st.one_of(dims.map(lambda d: f"x:{d}"), paths.map(lambda p: f"x={p}")),
    "--shapes": st.tuples(dims, dims, dims).map(lambda t: "x:" + "/".join(t)),
    "--batch": st.tuples(numbers, numbers, numbers).map("/".join),
    "--opset": numbers,
    "--opt-level": numbers,
    "--workspace": numbers,
    "--builder-threads": numbers,
    "--warmup": numbers,
    "--duration": numbers,
    "--iterations": numbers,
    "--streams": numbers,
    "--atol": numbers,
    "--rtol": numbers,
    "--calib-percentile": numbers,
    "--calib-batches": numbers,
    "--calib-data": paths,
    "--calib-cache": paths,
    "--save-outputs": paths,
    "--export-times": paths,
    "--save-onnx": paths,
    "-o": paths,
    "--int8": None,
    "--no-engine": None,
    "--precision": st.sampled_from(["fp16", "bf16", "fp8"]),
}
COMMANDS = {
    "convert": [
        "-o",
        "--save-onnx",
        "--input",
        "--shapes",
        "--batch",
        "--opset",
        "--opt-level",
        "--workspace",
        "--builder-threads",
        "--int8",
        "--calib-data",
        "--calib-cache",
        "--calib-percentile",
        "--calib-batches",
        "--no-engine",
        "--precision",
        "--scale",
        "--std",
        "--mean",
    ],
    "run": [
        "--top-k",
        "--seed",
        "--scale",
        "--mean",
        "--std",
        "--resize",
        "--input",
        "--save-outputs",
        "--precision",
    ],
    "bench": [
        "--warmup",
        "--duration",
        "--iterations",
        "--streams",
        "--export-times",
        "--input",
        "--seed",
    ],
    "verify": ["--atol", "--rtol", "--input", "--seed", "--precision"],
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command, the model, and up to four of the command's flags with drawn values."""
    command = draw(st.sampled_from(sorted(COMMANDS)))
    argv = [command, "m.onnx"]
    if command != "convert":
        argv += ["--backend", "onnxruntime"]
    for flag in draw(st.lists(st.sampled_from(COMMANDS[command]), max_size=4, unique=True)):
        strategy = FLAGS[flag]
        argv += [flag] if strategy is None else [flag, draw(strategy)]
    if command == "bench":
        argv += ["--duration", "0", "--warmup", "0", "--iterations", "1"]
    return [*argv, "-q"]


@settings(
    max_examples=int(sys.argv[2]),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(command_lines())
def check_command_line(argv: list[str]) -> None:
    """Every command line keeps the promises; files it may write are the named outputs."""
    outputs = {
        argv[i + 1]
        for i, a in enumerate(argv[:-1])
        if a in ("-o", "--save-onnx", "--save-outputs", "--export-times", "--calib-cache")
    }
    allowed = (
        set(outputs)
        | {f"{o}.json" for o in outputs}
        | {"m.engine", "m.engine.json", "m.engine.calib.json", "m.calib.json"}
    )
    for name in list(allowed):
        allowed.add(name.removeprefix("./"))
    case = {
        "name": " ".join(argv),
        "argv": argv,
        "cwd": str(FOLDER),
        "protected": [str(FOLDER / p) for p in PROTECTED if p not in outputs],
        "timeout": 60,
        "allowed": sorted(allowed),
    }
    result = driver.run_case(case)
    for name in result["new"]:  # allowed outputs are removed, so each example starts alike
        path = FOLDER / name
        if path.is_file() and name not in PROTECTED:
            path.unlink()
    found = fuzz_harness.problems(case, result)
    assert not found, found


def main() -> None:
    """Run the search; write ``{"failure": text}`` or ``{}`` to the report file."""
    report: dict[str, str] = {}
    try:
        check_command_line()
    except Exception as err:  # the shrunk failing example, with hypothesis' note
        notes = "\n".join(getattr(err, "__notes__", []))
        report["failure"] = f"{notes}\n{err}"
    Path(sys.argv[3]).write_text(json.dumps(report))
    os.chdir(FOLDER)


if __name__ == "__main__":
    main()
