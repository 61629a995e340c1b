"""trtimport vs a bare tensorrt_rtx parse+build script on the same ResNet-50-size ONNX model.

Both run as fresh processes, alternating, several repetitions; the ratio of the median wall
times is trtimport's overhead (target: <= 1.05). Single runs scatter by +-20% (page cache
write-back, other jobs), so the script also prints a 95% bootstrap interval of that ratio and
the median of the ratios of adjacent pairs. Run from the repository root:

    python benchmarks/bench_overhead.py [--reps 21]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from resnet50_onnx import parameter_count, resnet50  # noqa: E402


def child_env(pycache: Path) -> dict[str, str]:
    """The environment of both measured processes: with bytecode caching, as installed.

    ``pip install`` compiles ``.pyc`` files, but a ``PYTHONDONTWRITEBYTECODE`` in the calling
    environment would make every run recompile trtimport's modules (~0.07 s of CPU) while
    tensorrt_rtx's cached bytecode is used: a cost no installed user pays. The cache goes to
    a temporary folder so the source tree stays clean.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user+sys) of one fresh process; fails loudly if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def bootstrap_interval(
    ours: list[float], bare: list[float], rounds: int = 4000
) -> tuple[float, float]:
    """95% interval of median(ours) / median(bare), resampling each list with replacement."""
    rng = random.Random(0)
    ratios = sorted(
        statistics.median(rng.choices(ours, k=len(ours)))
        / statistics.median(rng.choices(bare, k=len(bare)))
        for _ in range(rounds)
    )
    return ratios[int(0.025 * rounds)], ratios[int(0.975 * rounds) - 1]


def main() -> None:
    """Run the comparison and print a markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete both engines (and trtimport's sidecar) before every run: first builds, "
        "with no engine to replace and no recorded source digest to reuse",
    )
    args = parser.parse_args()
    import onnx

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="trtimport-bench-") as tmp:
        folder = Path(tmp)
        model = resnet50()
        params = parameter_count(model)
        path = folder / "resnet50.onnx"
        onnx.save(model, str(path))
        bare = [sys.executable, str(HERE / "bare_build.py"), str(path), str(folder / "bare.engine")]
        ours = [sys.executable, "-m", "trtimport", str(path), "-o", str(folder / "ours.engine")]
        env = child_env(folder / "pycache")
        timed(bare, env)  # warm the page cache, the bytecode cache and TensorRT's first-run work
        timed(ours, env)
        times: dict[str, list[float]] = {"bare": [], "trtimport": []}
        cpu: dict[str, list[float]] = {"bare": [], "trtimport": []}
        for i in range(args.reps):
            order = [("bare", bare), ("trtimport", ours)]
            for name, cmd in order if i % 2 == 0 else reversed(order):
                if args.fresh:
                    for leftover in ("bare.engine", "ours.engine", "ours.engine.json"):
                        (folder / leftover).unlink(missing_ok=True)
                wall, used = timed(cmd, env)
                times[name].append(wall)
                cpu[name].append(used)
        engine_mb = (folder / "ours.engine").stat().st_size / 2**20
    bare_med = statistics.median(times["bare"])
    ours_med = statistics.median(times["trtimport"])
    import tensorrt_rtx

    print(
        f"model: ResNet-50-shaped ONNX, {params / 1e6:.1f} M params, 1x3x224x224, "
        f"engine {engine_mb:.0f} MiB"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"tensorrt_rtx {tensorrt_rtx.__version__}, {time.strftime('%Y-%m-%d')}"
    )
    print(f"repetitions: {args.reps} each, alternating, fresh processes")
    print(
        "outputs: deleted before every run (first builds)"
        if args.fresh
        else "outputs: each run rebuilds over its previous engine"
    )
    print(f"load average before: {load[0]:.1f}, after: {os.getloadavg()[0]:.1f}")
    print("| path | median wall s | median CPU s | wall runs (s) |")
    print("|---|---|---|---|")
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(
            f"| {name} | {statistics.median(values):.2f} | "
            f"{statistics.median(cpu[name]):.2f} | {runs} |"
        )
    ratio = ours_med / bare_med
    cpu_ratio = statistics.median(cpu["trtimport"]) / statistics.median(cpu["bare"])
    low, high = bootstrap_interval(times["trtimport"], times["bare"])
    pairs = statistics.median(o / b for o, b in zip(times["trtimport"], times["bare"], strict=True))
    print(f"overhead ratio (trtimport / bare, median wall): {ratio:.3f} (target <= 1.05)")
    print(f"  95% bootstrap interval of that ratio: {low:.3f} - {high:.3f}")
    print(f"  median of the adjacent-pair ratios: {pairs:.3f}")
    fastest = min(times["trtimport"]) / min(times["bare"])
    print(
        f"  fastest run of each: {min(times['trtimport']):.2f} s / {min(times['bare']):.2f} s "
        f"= {fastest:.3f} (the least disturbed runs)"
    )
    print(f"CPU-time ratio (trtimport / bare, median user+sys): {cpu_ratio:.3f}")


if __name__ == "__main__":
    main()
