"""Cold start of `trtimport --help` and `trtimport formats` (target: median <= 0.25 s).

Each command runs as a fresh process, interleaved, ``--runs`` times; ``python -c pass`` is the
floor. A second pass with ``-X importtime`` checks that no TensorFlow, ONNX Runtime, TensorRT,
OpenCV or PyTorch module was imported. Run from the repository root:

    python benchmarks/bench_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("tensorflow", "onnxruntime", "tensorrt", "tensorrt_rtx", "cv2", "torch")
TARGET = 0.25


def commands() -> dict[str, list[str]]:
    """What is timed: the installed `trtimport` script if there is one, else python -m."""
    script = shutil.which("trtimport")
    base = [script] if script else [sys.executable, "-m", "trtimport"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "trtimport --help": [*base, "--help"],
        "trtimport formats": [*base, "formats"],
    }


def wall(cmd: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user+sys) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def heavy_imports(cmd: list[str]) -> list[str]:
    """Heavy top-level modules imported by ``cmd`` (run under ``-X importtime``)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return sorted(names & set(HEAVY))


def main() -> None:
    """Time the commands and print a markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    cmds = commands()
    for cmd in cmds.values():
        wall(cmd)  # warm the file cache
    times: dict[str, list[float]] = {name: [] for name in cmds}
    cpu: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            seconds, used = wall(cmd)
            times[name].append(seconds)
            cpu[name].append(used)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}, "
        f"{time.strftime('%Y-%m-%d')}; {args.runs} fresh processes each, interleaved"
    )
    print(f"command: {' '.join(cmds['trtimport --help'][:-1])} ...")
    print("| command | median wall s | min wall s | median CPU s | heavy modules imported |")
    print("|---|---|---|---|---|")
    failed = False
    for name, cmd in cmds.items():
        median = statistics.median(times[name])
        heavy = heavy_imports(cmd) if name != "python -c pass" else []
        verdict = ", ".join(heavy) or "none"
        print(
            f"| {name} | {median:.3f} | {min(times[name]):.3f} | "
            f"{statistics.median(cpu[name]):.3f} | {verdict} |"
        )
        if name != "python -c pass" and (median > TARGET or heavy):
            failed = True
    print(f"target: median <= {TARGET} s and no heavy module: {'FAIL' if failed else 'pass'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
