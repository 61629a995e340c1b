"""Small commands of two source trees side by side: is start-up or a small model slower?

    python benchmarks/ab_trees.py BASE_SRC [--reps 15] [--model MODEL] [--only-model]

Runs ``python -m trtimport`` with ``PYTHONPATH`` set to ``BASE_SRC`` (another checkout's
``src``, main's say) and to this checkout's ``src``, each command as a fresh process, the two
trees in alternating order, ``--reps`` times after one warm-up round (cached bytecode, as
installed). Commands: ``--help``, ``formats``, building ``examples/onnx/tiny_cnn.onnx`` and a
missing model; with ``--model``, building MODEL too (the ResNet-50 that bench_overhead.py
builds, say: ``onnx.save(resnet50(), OUT)`` with ``resnet50`` from
benchmarks/resnet50_onnx.py), and with ``--only-model`` just that. Prints the medians and the
median of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the comparison and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base", type=Path, help="the other tree's src folder")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--model", type=Path, help="also time building this model")
    parser.add_argument("--only-model", action="store_true", help="time only --model's build")
    args = parser.parse_args()
    trees = {"base": str(args.base.resolve()), "this": str(REPO / "src")}
    work = Path(tempfile.mkdtemp(prefix="trtimport-ab-"))
    commands = {
        "--help": ["--help"],
        "formats": ["formats"],
        "tiny_cnn.onnx -o": [
            str(REPO / "examples" / "onnx" / "tiny_cnn.onnx"),
            "-o",
            "ENGINE",
            "-q",
        ],
        "missing model": [str(work / "missing.onnx"), "-q"],
    }
    if args.only_model:
        commands.clear()
    if args.model:
        commands[f"{args.model.name} -o"] = [str(args.model.resolve()), "-o", "ENGINE", "-q"]
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    runs: dict[tuple[str, str], list[float]] = {(t, c): [] for t in trees for c in commands}
    for i in range(args.reps + 1):
        for command, cmd_args in commands.items():
            for tree in list(trees)[:: 1 if i % 2 else -1]:
                env = dict(
                    base_env, PYTHONPATH=trees[tree], PYTHONPYCACHEPREFIX=str(work / f"pyc-{tree}")
                )
                argv = [a.replace("ENGINE", str(work / f"{tree}.engine")) for a in cmd_args]
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "trtimport", *argv],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                if i:  # the first round warms caches
                    runs[(tree, command)].append(time.perf_counter() - start)
    print(f"{args.reps} runs per tree and command, alternating; load {os.getloadavg()[0]:.1f}")
    print("| command | base median s | this median s | this / base | per-pair ratio |")
    print("|---|---|---|---|---|")
    for command in commands:
        base, this = runs[("base", command)], runs[("this", command)]
        pairs = statistics.median(t / b for b, t in zip(base, this, strict=True))
        ratio = statistics.median(this) / statistics.median(base)
        print(
            f"| {command} | {statistics.median(base):.3f} | {statistics.median(this):.3f} | "
            f"{ratio:.3f} | {pairs:.3f} |"
        )


if __name__ == "__main__":
    main()
