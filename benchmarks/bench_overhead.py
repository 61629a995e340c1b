"""trtimport vs a bare tensorrt_rtx parse+build script on the same ResNet-50-size ONNX model.

Three sides run as fresh processes, in rotating order, several repetitions:

- ``bare``: the baseline script (benchmarks/bare_build.py), TensorRT's defaults;
- ``trtimport``: ``trtimport MODEL -o OUT``, trtimport's defaults (the builder may use every
  CPU; the engine is byte-identical to a one-thread build);
- ``trtimport-1thread``: the same with ``--builder-threads 1``, the very build the bare script
  runs, so its ratio is trtimport's own overhead (start-up, hashing, sidecar, atomic write).

The ratio of the median wall times to bare's is the overhead (target: <= 1.05). Single runs
scatter by +-20% (page cache write-back, the VM backing new memory, other jobs), so the script
also prints 95% bootstrap intervals and the medians of the ratios within each repetition. Run
from the repository root:

    python benchmarks/bench_overhead.py [--reps 21] [--fresh]
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

from trtimport.build.engine import sidecar_path  # noqa: E402


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
        engines = {
            "bare": folder / "bare.engine",
            "trtimport": folder / "ours.engine",
            "trtimport-1thread": folder / "one.engine",
        }
        trtimport = [sys.executable, "-m", "trtimport", str(path), "-o"]
        sides = {
            "bare": [sys.executable, str(HERE / "bare_build.py"), str(path), str(engines["bare"])],
            "trtimport": [*trtimport, str(engines["trtimport"])],
            "trtimport-1thread": [
                *trtimport,
                str(engines["trtimport-1thread"]),
                "--builder-threads",
                "1",
            ],
        }
        env = child_env(folder / "pycache")
        for cmd in sides.values():  # warm the page cache, the bytecode cache, TensorRT's first run
            timed(cmd, env)
        times: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        for i in range(args.reps):
            for name in names[i % 3 :] + names[: i % 3]:
                if args.fresh:  # this side's engine (and sidecar) from its previous run
                    engines[name].unlink(missing_ok=True)
                    sidecar_path(engines[name]).unlink(missing_ok=True)
                wall, used = timed(sides[name], env)
                times[name].append(wall)
                cpu[name].append(used)
        ours = engines["trtimport"].read_bytes()
        engine_mb = len(ours) / 2**20
        same = ours == engines["trtimport-1thread"].read_bytes()
        same_bare = ours == engines["bare"].read_bytes()
    bare_med = statistics.median(times["bare"])
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
    print(f"repetitions: {args.reps} each, in rotating order, fresh processes")
    print(
        f"engines: trtimport's default and one-thread builds are "
        f"{'byte-identical' if same else 'DIFFERENT'}; "
        f"{'identical to' if same_bare else 'different from'} bare's"
    )
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
    for name in names[1:]:
        ours_t = times[name]
        ratio = statistics.median(ours_t) / bare_med
        cpu_ratio = statistics.median(cpu[name]) / statistics.median(cpu["bare"])
        low, high = bootstrap_interval(ours_t, times["bare"])
        pairs = statistics.median(o / b for o, b in zip(ours_t, times["bare"], strict=True))
        print(f"{name} / bare, median wall: {ratio:.3f} (target <= 1.05)")
        print(f"  95% bootstrap interval of that ratio: {low:.3f} - {high:.3f}")
        print(f"  median of the per-repetition ratios: {pairs:.3f}")
        print(
            f"  fastest run of each: {min(ours_t):.2f} s / {min(times['bare']):.2f} s "
            f"= {min(ours_t) / min(times['bare']):.3f} (the least disturbed runs)"
        )
        print(f"  CPU-time ratio (median user+sys): {cpu_ratio:.3f}")


if __name__ == "__main__":
    main()
